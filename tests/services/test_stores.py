"""Own store per service, enforced by PostgreSQL: each service's role owns its database, and only it.

The credentials are the ones the running services were given (``testbed.native.services.stores``); the refusal
asserted is the server's own (SQLSTATE 42501, "permission denied for database ..."), and each refusal
has a positive control (the same credential works on its own database), so a wrong password cannot pass
for isolation.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from testbed.context import RenderContext
from testbed.native.services import stores

pytestmark = pytest.mark.native


async def _connect(ctx: RenderContext, role: str, password: str, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1",
        port=ctx.port("postgresql"),
        user=role,
        password=password,
        database=database,
        timeout=10,
    )


async def _own_rows(ctx: RenderContext, service: str, table: str) -> int:
    store = stores(ctx)[service]
    connection = await _connect(ctx, store.role, store.password, store.database)
    try:
        return await connection.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("intruder", "victim"), [("inventory", "orders"), ("orders", "inventory"), ("payments", "orders")]
)
def test_a_service_role_is_refused_on_another_services_database(
    native_stack: RenderContext, intruder: str, victim: str
):
    own = stores(native_stack)[intruder]
    target = stores(native_stack)[victim].database

    async def intrude() -> None:
        connection = await _connect(native_stack, own.role, own.password, target)
        await connection.close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        asyncio.run(intrude())
    assert refused.value.sqlstate == "42501"
    assert f'permission denied for database "{target}"' in str(refused.value)


def test_each_service_role_owns_and_reads_its_own_database(native_stack: RenderContext):
    assert asyncio.run(_own_rows(native_stack, "inventory", "products")) >= 8  # the demo catalog
    assert asyncio.run(_own_rows(native_stack, "orders", "orders")) >= 0
    assert asyncio.run(_own_rows(native_stack, "payments", "payments")) >= 0

    async def privileges() -> list[asyncpg.Record]:
        store = stores(native_stack)["orders"]
        connection = await _connect(native_stack, store.role, store.password, store.database)
        try:
            return await connection.fetch(
                "SELECT r.rolname, r.rolsuper, r.rolcreatedb, r.rolcreaterole, d.datname"
                " FROM pg_roles r JOIN pg_database d ON d.datdba = r.oid WHERE r.rolname = current_user"
            )
        finally:
            await connection.close()

    (row,) = asyncio.run(privileges())
    assert (row["rolname"], row["datname"]) == ("orders", "orders")
    assert not (row["rolsuper"] or row["rolcreatedb"] or row["rolcreaterole"])


def test_running_services_use_their_own_role(native_stack: RenderContext):
    from testbed.native.services import environment

    for service in ("inventory", "orders", "payments"):
        dsn = environment(native_stack, service, 0)["SHOP_DATABASE_URL"]
        assert dsn.startswith(f"postgresql://{service}:"), service
        assert native_stack.secrets.postgres_password not in dsn
