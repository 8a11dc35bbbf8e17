"""PostgreSQL (asyncpg): one role and one database per service; each service migrates its own at start.

The stack (not the service) provisions the stores with the server's admin credential: ``provision``
makes each service's login role, the database that role owns, and revokes ``CONNECT`` from ``PUBLIC``,
so a service's credential is refused on every other service's database. A service connects with its own
role only (no ``CREATEDB``, no superuser) and applies its migrations, idempotently and safely when
several instances start at once (an advisory lock serialises them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

logger = logging.getLogger("shop.db")
_MIGRATION_LOCK = 7_262_011  # any constant: one advisory lock per database


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


@dataclass(frozen=True)
class Store:
    """A service's database and the login role that owns it."""

    database: str
    role: str
    password: str


async def _execute_formatted(connection: asyncpg.Connection, template: str, *values: str) -> None:
    # DDL takes no bind parameters: the server quotes the identifiers (%I) and literals (%L) itself.
    arguments = "".join(f", ${i}::text" for i in range(2, len(values) + 2))
    statement = await connection.fetchval(f"SELECT format($1::text{arguments})", template, *values)
    await connection.execute(statement)


async def provision(admin_dsn: str, stores: Mapping[str, Store]) -> None:
    """Create (or bring back in line) each service's role and database; idempotent.

    The role's password is set from the generated secret every time (a stack's secrets file is the
    truth). Tables made before roles existed (owned by the admin) are handed to the owning role.
    """
    admin = await asyncpg.connect(admin_dsn)
    try:
        for store in stores.values():
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", store.role)
            verb = "ALTER" if exists else "CREATE"
            await _execute_formatted(
                admin,
                f"{verb} ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L",
                store.role,
                store.password,
            )
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", store.database):
                await _execute_formatted(admin, "CREATE DATABASE %I OWNER %I", store.database, store.role)
                logger.info("database %s created", store.database, extra={"event.action": "database-created"})
            await _execute_formatted(admin, "ALTER DATABASE %I OWNER TO %I", store.database, store.role)
            await _execute_formatted(admin, "REVOKE ALL ON DATABASE %I FROM PUBLIC", store.database)
        for store in stores.values():
            await _hand_over_tables(admin_dsn, store)
    finally:
        await admin.close()


async def _hand_over_tables(admin_dsn: str, store: Store) -> None:
    connection = await asyncpg.connect(urlsplit(admin_dsn)._replace(path=f"/{store.database}").geturl())
    try:
        await _execute_formatted(connection, "REVOKE ALL ON SCHEMA public FROM PUBLIC")
        foreign = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner <> $1", store.role
        )
        for row in foreign:
            await _execute_formatted(
                connection, "ALTER TABLE public.%I OWNER TO %I", row["tablename"], store.role
            )
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
    """A pool on the service's own database (provisioned by the stack), migrated."""
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, command_timeout=10, reset=skip_session_reset
    )
    await migrate(pool, migrations)
    return pool
