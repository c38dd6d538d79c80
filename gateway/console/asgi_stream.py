"""Call an ASGI app in-process and read its response body as it is produced.

httpx's ASGI transport holds a whole response in memory; query results can be large,
so the console drives the app directly for them: the app runs as a task feeding a small
queue (backpressure), and closing the body iterator cancels the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp

_END = object()


class StreamedResponse:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes]):
        self.status = status
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.body = body


async def call_streaming(app: ASGIApp, scope: dict[str, Any], payload: bytes) -> StreamedResponse:
    call = _Call(app, scope, payload)
    return await call.start()


class _Call:
    def __init__(self, app: ASGIApp, scope: dict[str, Any], payload: bytes) -> None:
        self.app = app
        self.scope = scope
        self.payload = payload
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=8)
        self.request_sent = False
        self.finished = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> dict[str, Any]:
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": self.payload, "more_body": False}
        await self.finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        await self.queue.put(message)

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)  # type: ignore[arg-type]
        except Exception as exc:  # handed to the reader
            await self.queue.put(exc)
        else:
            await self.queue.put(_END)

    async def start(self) -> StreamedResponse:
        self.task = asyncio.create_task(self.run())
        first = await self.queue.get()
        if isinstance(first, BaseException):
            self.close()
            raise first
        if first is _END or first.get("type") != "http.response.start":
            self.close()
            raise RuntimeError("the app sent no response")
        return StreamedResponse(int(first["status"]), list(first.get("headers", [])), self.body())

    async def body(self) -> AsyncIterator[bytes]:
        try:
            while True:
                message = await self.queue.get()
                if message is _END:
                    return
                if isinstance(message, BaseException):
                    raise message
                if message.get("type") != "http.response.body":
                    continue
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    return
        finally:
            self.close()

    def close(self) -> None:
        self.finished.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()
