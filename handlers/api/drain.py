"""Graceful HTTP shutdown: on SIGTERM, drain first (not ready, `Connection: close`), then stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from handlers.api.asgi import ASGIApp

__all__ = ["Drain", "DrainMiddleware"]

log = logging.getLogger(__name__)


class Drain:
    """Delays the server's own SIGTERM handling by `seconds` of draining.

    While draining, /readyz says not ready (load balancers and Kubernetes stop routing
    here) and every response closes its connection, so no client is left holding an idle
    keep-alive connection when the listener closes. Then the server's original handler
    runs: it stops accepting, finishes in-flight requests and runs the shutdown hooks.
    """

    def __init__(self) -> None:
        self.draining = False
        self._seconds = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        self._on_begin: Callable[[], None] = lambda: None

    def install(self, seconds: float, on_begin: Callable[[], None] = lambda: None) -> None:
        """Take over SIGTERM in the running loop (call from the server's startup hook);
        `on_begin` runs when draining begins (requests waiting for admission get 503)."""
        self._seconds = seconds
        self._on_begin = on_begin
        self._loop = asyncio.get_running_loop()
        self._previous = signal.getsignal(signal.SIGTERM)
        self._loop.add_signal_handler(signal.SIGTERM, self._begin)

    def _begin(self) -> None:
        if self.draining:
            return
        self.draining = True
        self._on_begin()
        log.info("SIGTERM: draining for %.1fs before shutting down", self._seconds)
        assert self._loop is not None
        self._loop.call_later(self._seconds, self._hand_over)

    def _hand_over(self) -> None:
        assert self._loop is not None
        self._loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._previous)
        if callable(self._previous):
            self._previous(signal.SIGTERM, None)
        else:
            signal.raise_signal(signal.SIGTERM)


class DrainMiddleware:
    """ASGI middleware: while `draining()` (the running service's Drain), every HTTP
    response carries `Connection: close`."""

    def __init__(self, app: ASGIApp, draining: Callable[[], bool]) -> None:
        self.app = app
        self._draining = draining

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def closing_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and self._draining():
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, closing_send)
