"""Masks sensitive values before a log line is written: emails, card numbers, bearer tokens, passwords."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

MASK = "[REDACTED]"


class RedactionSwitch:
    """On, unless a fault flag (``log_redaction: false``) switches it off for one service instance:
    the sabotage the scenarios' "no personal data in Elasticsearch" assertion must catch."""

    enabled = True


SWITCH = RedactionSwitch()

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits in one run, or grouped 4-4-4-4 / 4-6-5 by spaces or dashes (ISO/IEC 7812), not part of
# a longer token (so UUIDs and hex ids are left alone); only Luhn-valid numbers are masked. Groups are
# explicit: a free "digit, optional separator" pattern swallowed what follows a card ("GET
# /catalog/4111111111111111 404" became one 19-digit non-card and the card was logged in clear).
_CARD = re.compile(
    r"(?<![0-9A-Za-z-])(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){3}|[0-9]{4}[ -][0-9]{6}[ -][0-9]{5})"
    r"(?![0-9A-Za-z]|-[0-9A-Za-z])"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_SECRET_PAIR = re.compile(
    r"(?i)(\"?\b(?:password|passwd|pwd|secret|api[_-]?key|token|authorization)\b\"?\s*[:=]\s*\"?)"
    r"(?!\[REDACTED\])(?!(?:bearer|basic)\s)([^\s\",&}]+)"
)
# Values under these keys are masked whole, whatever they look like.
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "api_key",
        "apikey",
        "authorization",
        "token",
        "card_number",
        "cvv",
        "email",
        "customer_email",
    }
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return MASK if _luhn_valid(digits) else match.group(0)


# One cheap scan decides whether a string needs the substitutions at all (most log strings do not).
_MAYBE_SENSITIVE = re.compile(
    r"@|[0-9][0-9 -]{11,}[0-9]|(?i:bearer|basic|passw|pwd|secret|api.?key|token|authoriz)"
)


def redact_text(text: str) -> str:
    if not SWITCH.enabled or not _MAYBE_SENSITIVE.search(text):
        return text
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + MASK, text)
    text = _EMAIL.sub(MASK, text)
    return _CARD.sub(_mask_card, text)


def redact_field(name: str, value: Any) -> Any:
    """A field's value, masked whole when its (last) name is sensitive, else redacted."""
    if not SWITCH.enabled:
        return value
    if value is not None and name.rsplit(".", 1)[-1].lower() in _SECRET_KEYS:
        return MASK
    return redact_tree(value, {})


KeepTree = dict[str, "KeepTree | bool"]


def keep_tree(paths: Collection[str]) -> KeepTree:
    """Dotted paths (``trace.id``) as a nested lookup, so a walk never builds path strings."""
    tree: KeepTree = {}
    for path in paths:
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if child is True:
                break
            node = child  # type: ignore[assignment]
        else:
            node[leaf] = True
    return tree


def redact(value: Any, keep: Collection[str] = ()) -> Any:
    """Redact every string in a JSON-like value; values under sensitive keys are masked whole.

    ``keep`` lists dotted paths left untouched (identifiers such as ``trace.id`` that may look like digits).
    Dicts and lists are redacted in place (log events are built fresh for each line).
    """
    return redact_tree(value, keep_tree(keep) if keep else {})


def redact_tree(value: Any, keep: KeepTree) -> Any:
    """``redact`` with the kept paths already as a ``keep_tree``."""
    if not SWITCH.enabled:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        for key, item in value.items():
            kept = keep.get(key)
            if kept is True:
                continue
            if item is not None and key.lower() in _SECRET_KEYS:
                value[key] = MASK
            elif isinstance(item, str):
                value[key] = redact_text(item)
            elif isinstance(item, dict | list):
                value[key] = redact_tree(item, kept or {})
        return value
    if isinstance(value, list):
        return [redact_tree(item, keep) for item in value]
    return value
