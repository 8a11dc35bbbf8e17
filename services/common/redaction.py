"""Masks sensitive values before a log line is written: emails, card numbers, bearer tokens, passwords."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

MASK = "[REDACTED]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes (ISO/IEC 7812), not part of a longer token
# (so UUIDs and hex ids are left alone); only Luhn-valid numbers are masked.
_CARD = re.compile(r"(?<![0-9A-Za-z-])(?:[0-9][ -]?){12,18}[0-9](?![0-9A-Za-z]|-[0-9A-Za-z])")
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


def redact_text(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + MASK, text)
    text = _EMAIL.sub(MASK, text)
    return _CARD.sub(_mask_card, text)


def redact(value: Any, keep: Collection[str] = (), _path: str = "") -> Any:
    """Redact every string in a JSON-like value; values under sensitive keys are masked whole.

    ``keep`` lists dotted paths left untouched (identifiers such as ``trace.id`` that may look like digits).
    """
    if _path in keep:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            path = f"{_path}.{key}" if _path else str(key)
            sensitive = str(key).lower() in _SECRET_KEYS and item is not None and path not in keep
            result[key] = MASK if sensitive else redact(item, keep, path)
        return result
    if isinstance(value, list | tuple):
        return [redact(item, keep, _path) for item in value]
    return value
