"""Drain: SIGTERM first drains (flag, Connection: close), then hands over to the old handler."""

from __future__ import annotations

import asyncio
import os
import signal

from handlers.api.drain import Drain, DrainMiddleware


async def test_sigterm_drains_then_calls_the_previous_handler():
    loop = asyncio.get_running_loop()
    began_at: list[float] = []
    handed_at: list[float] = []
    began, handed = asyncio.Event(), asyncio.Event()

    def on_begin() -> None:
        began_at.append(loop.time())
        began.set()

    def old_handler(signum, frame) -> None:
        handed_at.append(loop.time())
        handed.set()

    previous = signal.signal(signal.SIGTERM, old_handler)
    try:
        drain = Drain()
        drain.install(0.3, on_begin)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(began.wait(), 5)
        assert drain.draining and handed_at == []
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM does not shorten the drain
        await asyncio.wait_for(handed.wait(), 5)
        assert len(began_at) == 1 and len(handed_at) == 1
        assert handed_at[0] - began_at[0] >= 0.3 - 0.01  # the whole drain, then the old handler
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_middleware_closes_connections_only_while_draining():
    drain = Drain()
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"connection", b"keep-alive"), (b"x", b"1")],
            }
        )

    async def send(message):
        sent.append(message)

    middleware = DrainMiddleware(app, draining=lambda: drain.draining)
    await middleware({"type": "http"}, None, send)
    drain.draining = True
    await middleware({"type": "http"}, None, send)
    assert sent[0]["headers"] == [(b"connection", b"keep-alive"), (b"x", b"1")]
    assert sent[1]["headers"] == [(b"x", b"1"), (b"connection", b"close")]
