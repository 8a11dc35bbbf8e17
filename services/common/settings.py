"""Settings every service reads from its environment (``SHOP_*``), validated once at start.

A service refuses to start with one line naming the setting to fix, never with a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SHOP_"


class ServiceSettings(BaseSettings):
    """What every service needs; each service subclasses it for its own dependencies."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    service_name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    instance: int = Field(default=0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    log_dir: Path | None = None
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    log_backups: int = Field(default=3, ge=0)
    # Fault injection is off unless a token is configured.
    fault_admin_token: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # Seconds uvicorn waits for in-flight requests on SIGTERM.
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    @property
    def instance_name(self) -> str:
        return f"{self.service_name}-{self.instance}"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "?"
    kind = "missing" if first["type"] == "missing" else f"invalid ({first['msg']})"
    return f"{ENV_PREFIX}{field.upper()} is {kind}: set it in the environment and restart"


def load_settings[S: ServiceSettings](settings_class: type[S]) -> S:
    """Read the settings or exit 2 with one clear line (``SHOP_PORT is missing: set it...``)."""
    try:
        return settings_class()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        print(f"configuration error: {_describe(error)}", file=sys.stderr)
        raise SystemExit(2) from None
