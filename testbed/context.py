"""What every config renderer needs to know about one stack: the contract between the engines.

A renderer (Prometheus, Alertmanager, rsyslog, Curator, the services…) takes a ``RenderContext`` and
returns text or writes files; it never reads ports, paths or secrets from anywhere else. The native
stack builds one with ``RenderContext.native()``; compose renders with ``mode="compose"``, where hosts
are compose service names and paths are the containers' mount points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from testbed import settings
from testbed.secrets import Secrets, load_or_create

Mode = Literal["native", "compose"]


@dataclass(frozen=True)
class RenderContext:
    mode: Mode
    state_dir: Path
    ports: dict[str, list[int]]
    secrets: Secrets
    # Host each component is reached at: 127.0.0.1 natively, the compose service name in compose.
    hosts: dict[str, str] = field(default_factory=dict)

    # Layout of the state directory (native) or of the containers' mounts (compose).
    @property
    def config_dir(self) -> Path:
        """Rendered configuration, one sub-directory per component."""
        return self.state_dir / "config"

    @property
    def data_dir(self) -> Path:
        """Persistent data, one sub-directory per component."""
        return self.state_dir / "data"

    @property
    def log_dir(self) -> Path:
        """Components' own logs (stdout/stderr and native log files), one sub-directory per component."""
        return self.state_dir / "logs"

    @property
    def services_log_dir(self) -> Path:
        """The services' ECS JSON log files (``<service>-<instance>.log``), tailed by the shipper."""
        return self.state_dir / "logs" / "services"

    @property
    def pki_dir(self) -> Path:
        """``ca.crt`` and one ``<name>.crt``/``<name>.key`` pair per TLS endpoint."""
        return self.state_dir / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def snapshot_dir(self) -> Path:
        """Elasticsearch's filesystem snapshot repository (``path.repo``)."""
        return self.state_dir / "snapshots"

    def host(self, name: str) -> str:
        """Natively everything is on 127.0.0.1; in compose an unknown name is an error, not loopback."""
        if name in self.hosts:
            return self.hosts[name]
        if self.mode == "native":
            return "127.0.0.1"
        raise LookupError(
            f"no compose service runs {name!r}: add it to the compose hosts (testbed/deploy/runtime.py)"
            " and stack/compose.yaml, or do not address it in compose mode"
        )

    def runs(self, name: str) -> bool:
        """Whether this stack runs the component behind port ``name`` (compose runs only what it maps)."""
        return self.mode == "native" or name in self.hosts

    def port(self, name: str, instance: int = 0) -> int:
        return self.ports[name][instance]

    def address(self, name: str, instance: int = 0) -> str:
        return f"{self.host(name)}:{self.port(name, instance)}"

    @classmethod
    def native(cls) -> RenderContext:
        state = settings.state_dir()
        return cls(mode="native", state_dir=state, ports=settings.ports(), secrets=load_or_create(state))
