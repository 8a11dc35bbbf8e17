"""PostgreSQL (asyncpg): each service creates its own database and applies its migrations at start.

Both steps are idempotent and safe when several instances start at once (an advisory lock serialises
the migrations).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import asyncpg

logger = logging.getLogger("shop.db")
_MIGRATION_LOCK = 7_262_011  # any constant: one advisory lock per database


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def maintenance_dsn(dsn: str) -> str:
    """The same server and credentials, on the ``postgres`` database (to create ours)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/postgres"))


async def ensure_database(dsn: str) -> None:
    name = database_name(dsn)
    connection = await asyncpg.connect(maintenance_dsn(dsn))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
                logger.info("database %s created", name, extra={"event.action": "database-created"})
            except asyncpg.DuplicateDatabaseError:
                pass  # another instance won the race
    finally:
        await connection.close()


async def migrate(pool: asyncpg.Pool, migrations: Sequence[str]) -> None:
    """Apply ``migrations`` (ordered SQL scripts) not yet recorded in ``schema_migrations``."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")}
        for version, script in enumerate(migrations, start=1):
            if version in applied:
                continue
            await connection.execute(script)
            await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            logger.info("migration %d applied", version, extra={"event.action": "migration-applied"})


async def skip_session_reset(_connection: asyncpg.Connection) -> None:
    """Release hook: asyncpg already rolled back any open transaction. The services keep no session
    state (no SET, LISTEN or session advisory lock), so the default ``RESET ALL; UNLISTEN *; ...`` round
    trip on every release (one per query through the pool) is skipped."""


async def open_pool(dsn: str, migrations: Sequence[str], max_size: int = 10) -> asyncpg.Pool:
    await ensure_database(dsn)
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, command_timeout=10, reset=skip_session_reset
    )
    await migrate(pool, migrations)
    return pool
