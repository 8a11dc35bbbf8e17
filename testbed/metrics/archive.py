"""``testbed archive metrics``: a TSDB snapshot through Prometheus' admin API, optionally as a tarball."""

from __future__ import annotations

import tarfile
from pathlib import Path

import httpx

from testbed.context import RenderContext
from testbed.metrics.client import prometheus_client


class ArchiveError(RuntimeError):
    """One line saying what failed and what to do."""


def snapshot(ctx: RenderContext) -> Path:
    """Ask Prometheus for a TSDB snapshot; returns its directory under the TSDB path."""
    try:
        with prometheus_client(ctx, timeout_s=120) as client:
            response = client.post("/api/v1/admin/tsdb/snapshot")
    except httpx.TransportError as exc:
        raise ArchiveError(
            f"Prometheus at {client.base_url} is unreachable ({exc}): run `testbed up`"
        ) from exc
    if response.status_code == 401:
        raise ArchiveError("Prometheus refused the credentials: the state dir's secrets.json does not match")
    if response.status_code in (404, 405):
        raise ArchiveError("Prometheus' admin API is off: it must run with --web.enable-admin-api")
    response.raise_for_status()
    name = response.json()["data"]["name"]
    return ctx.data_dir / "prometheus" / "snapshots" / name


def archive(ctx: RenderContext, tarball: Path | None = None) -> Path:
    """Snapshot, and pack it into ``tarball`` (.tar.gz) when given. Returns what was produced."""
    directory = snapshot(ctx)
    if tarball is None:
        return directory
    if not directory.is_dir():
        raise ArchiveError(f"snapshot {directory} is not on this machine's disk (is Prometheus local?)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as archive_file:
        archive_file.add(directory, arcname=directory.name)
    return tarball
