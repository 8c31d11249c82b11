"""Drain: SIGTERM first drains (flag, Connection: close), then hands over to the old handler."""

from __future__ import annotations

import asyncio
import os
import signal

from handlers.api.drain import Drain, DrainMiddleware


async def test_sigterm_drains_then_calls_the_previous_handler():
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: calls.append(sig))
    try:
        drain = Drain()
        drain.install(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)
        assert drain.draining and calls == []
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM does not shorten the drain
        await asyncio.sleep(0.1)
        assert calls == []
        await asyncio.sleep(0.3)
        assert calls == [signal.SIGTERM]
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
