"""Exact admission for one model: an item cap, then a bounded FIFO waiting line with a deadline."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from handlers.errors import ErrorKind, ServiceError

__all__ = ["Admission"]


class Admission:
    """Counts the items admitted to one model; never more than `capacity` at once.

    Event-loop side only (no locks): `acquire` reserves synchronously when there is room
    and nobody is waiting, so no request can slip in between a check and an enqueue. A
    request that does not fit waits in a strict FIFO line of at most `max_waiting` items
    for at most `timeout` seconds. An *item* is one model input row: a text, an image,
    or one (query, document) pair.
    """

    def __init__(
        self,
        *,
        model: str,
        capacity: int,
        max_waiting: int,
        timeout: float,
        retry_after: Callable[[int], int],
    ) -> None:
        self.model = model
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.admitted = 0
        self.peak = 0  # the most items ever admitted at once (never above capacity)
        self.waiting = 0
        self.requests = 0  # requests admitted, ever
        self.rejected = dict.fromkeys(("queue_full", "timeout", "too_large"), 0)
        self._retry_after = retry_after  # depth in items -> seconds
        self._line: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._closed = False

    async def acquire(self, items: int) -> None:
        """Reserve `items`, waiting in line when the model is full.

        Raises:
            ServiceError: TOO_LARGE when `items` exceeds the capacity itself; OVERLOADED
                (with retry_after) when the line is full or the wait passes the timeout;
                NOT_READY when the service is shutting down.
        """
        if items > self.capacity:
            self.rejected["too_large"] += 1
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                f"The request holds {items} items but model '{self.model}' admits at most "
                f"{self.capacity} at once (INFINITY_QUEUE_SIZE). Split the request.",
                code="request_over_capacity",
            )
        if not self._line and self.admitted + items <= self.capacity:
            self.admitted += items
            self.peak = max(self.peak, self.admitted)
            self.requests += 1
            return
        if self._closed:
            raise self._shutting_down()
        if self.waiting + items > self.max_waiting:
            self.rejected["queue_full"] += 1
            raise self._overloaded(
                f"Model '{self.model}' is full ({self.admitted} items admitted, "
                f"{self.waiting} waiting; MAX_WAITING_ITEMS={self.max_waiting})."
            )
        await self._wait(items)
        self.requests += 1

    async def _wait(self, items: int) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (items, granted)
        self._line.append(entry)
        self.waiting += items
        try:
            async with asyncio.timeout(self.timeout):
                await granted
        except BaseException as exc:
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                if isinstance(exc, TimeoutError):
                    return  # granted in the same tick as the deadline: admitted
                self.release(items)
                raise
            if entry in self._line:
                self._line.remove(entry)
                self.waiting -= items
                self._grant()  # the head may have left: the next one may fit now
            if isinstance(exc, TimeoutError):
                self.rejected["timeout"] += 1
                raise self._overloaded(
                    f"Model '{self.model}' stayed full for {self.timeout:g}s "
                    "(QUEUE_TIMEOUT_SECONDS)."
                ) from None
            raise

    def release(self, items: int) -> None:
        """Give back `items` admitted earlier; admits waiting requests that now fit."""
        self.admitted -= items
        self._grant()

    def close(self) -> None:
        """Shutting down: requests waiting now, and later ones that would have to wait, get
        503; requests that fit are still admitted while the server drains."""
        self._closed = True
        while self._line:
            items, granted = self._line.popleft()
            self.waiting -= items
            if not granted.done():
                granted.set_exception(self._shutting_down())

    def _grant(self) -> None:
        while self._line:
            items, granted = self._line[0]
            if self.admitted + items > self.capacity:
                return  # strict FIFO: nobody overtakes the head of the line
            self._line.popleft()
            self.waiting -= items
            if not granted.done():
                self.admitted += items
                self.peak = max(self.peak, self.admitted)
                granted.set_result(None)

    def _overloaded(self, why: str) -> ServiceError:
        seconds = self._retry_after(self.admitted + self.waiting)
        return ServiceError(
            ErrorKind.OVERLOADED,
            f"{why} Retry after {seconds}s.",
            code="queue_full",
            retry_after=seconds,
        )

    def _shutting_down(self) -> ServiceError:
        return ServiceError(
            ErrorKind.NOT_READY,
            "The server is shutting down; retry on another replica.",
            code="shutting_down",
            retry_after=1,
        )
