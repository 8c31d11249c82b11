"""The ASGI callables the HTTP surface takes and wraps (BentoML's Starlette app among them)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["ASGIApp", "Receive", "Scope", "Send"]

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
Receive = Callable[[], Coroutine[Any, Any, dict[str, Any]]]
ASGIApp = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]
