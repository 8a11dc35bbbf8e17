"""The services' HTTP protocol: an answer's head and body leave in one write, nothing is held back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.common.server import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.unit.services.serving import serving


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_writes_of_one_step_leave_as_one():
    recording = RecordingTransport()
    transport = CoalescingTransport(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert recording.writes == []  # not before the step ends
    await asyncio.sleep(0)
    assert recording.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert recording.writes[1:] == [b"next"]
    assert transport.is_closing() is False  # delegated


async def test_close_sends_what_is_pending_first():
    recording = RecordingTransport()
    transport = CoalescingTransport(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert recording.writes == [b"last words"] and recording.closed
    await asyncio.sleep(0)
    assert recording.writes == [b"last words"]  # the scheduled flush finds nothing left


BIG = b"x" * (4 * 1024 * 1024)  # past the transport's write buffer limits: flow control engages


def _app() -> Starlette:
    async def small(request: Request) -> Response:
        return JSONResponse({"n": request.path_params["n"]}, headers={"x-extra": "1"})

    async def big(_request: Request) -> Response:
        return Response(BIG, media_type="application/octet-stream")

    async def streamed(_request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(50):
                yield f"{index},".encode()
                await asyncio.sleep(0)

        return StreamingResponse(chunks())

    return Starlette(routes=[Route("/small/{n}", small), Route("/big", big), Route("/streamed", streamed)])


async def test_real_server_answers_keep_alive_big_and_streamed_bodies():
    async with (
        serving(_app(), CoalescingHttpToolsProtocol) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        answers = [await client.get(f"/small/{n}") for n in range(20)]  # one kept-alive connection
        assert [a.json() for a in answers] == [{"n": str(n)} for n in range(20)]
        assert all(a.headers["x-extra"] == "1" for a in answers)
        big = await client.get("/big")
        assert big.content == BIG
        streamed = await client.get("/streamed")
        assert streamed.text == "".join(f"{index}," for index in range(50))
        concurrent = await asyncio.gather(*(client.get(f"/small/{n}") for n in range(30)))
        assert sorted(int(a.json()["n"]) for a in concurrent) == list(range(30))


SOCKET_WRITES: list[bytes] = []


class SocketWrites:
    """The real transport, recording what reaches it (below the coalescing layer)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        SOCKET_WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordedProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(SocketWrites(transport))  # type: ignore[arg-type]


async def test_head_and_body_reach_the_socket_in_one_write():
    SOCKET_WRITES.clear()
    async with serving(_app(), RecordedProtocol) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/small/7")).json() == {"n": "7"}
        assert (await client.get("/small/8")).json() == {"n": "8"}
    assert len(SOCKET_WRITES) == 2, SOCKET_WRITES  # one per answer
    for written, n in zip(SOCKET_WRITES, (7, 8), strict=True):
        head, _, body = written.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"n":"%d"}' % n
