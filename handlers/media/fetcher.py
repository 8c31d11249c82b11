"""Image and audio inputs: classify items, fetch URLs (limits, address policy), decode data
URIs, then bounded decoding (Pillow; libsndfile)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpcore
import httpx

from handlers.errors import At, ErrorKind, ServiceError
from handlers.media.addresses import BlockedAddress, GuardedBackend, Resolver, system_resolver
from handlers.media.audio import AudioLimits, Clip, decode_audio, probe_audio
from handlers.media.decode import ItemError, decode_image, open_image
from handlers.media.kinds import AUDIO, IMAGE, Kind, is_url, looks_like_audio, looks_like_image
from handlers.media.transport import PoolTransport, connect_failure
from handlers.settings import Settings

__all__ = ["MAX_REDIRECTS", "MediaFetcher"]

MAX_REDIRECTS = 5
INLINE_ON_LOOP = 64 * 1024  # base64 characters decoded on the event loop; longer: a thread
CHUNK = 64 * 1024


def _too_large(limit: int, kind: Kind) -> ItemError:
    return ItemError(
        f"{kind.name} is larger than {limit} bytes", ErrorKind.TOO_LARGE, f"{kind.name}_too_large"
    )


T = TypeVar("T")
R = TypeVar("R")


async def _each(items: list[tuple[int, T]], step: Callable[[T], Awaitable[R]]) -> list[R]:
    """`step` on every item concurrently.

    Raises:
        ServiceError: for the first item (in input order) whose step raised an ItemError,
            as `input[i]: <message>`, counting the other failures.
    """
    results = await asyncio.gather(*(step(item) for _, item in items), return_exceptions=True)
    failures = [
        (i, r) for (i, _), r in zip(items, results, strict=True) if isinstance(r, BaseException)
    ]
    if not failures:
        return results  # type: ignore[return-value]
    index, error = failures[0]
    if not isinstance(error, ItemError):
        raise error
    more = f" ({len(failures) - 1} more item(s) failed)" if len(failures) > 1 else ""
    raise ServiceError(
        error.kind,
        At(("input", index), f": {error}{more}"),
        param="input",
        code=error.code,
        retry_after=error.retry_after,
    )


class MediaFetcher:
    """One shared httpx.AsyncClient per process; turns image items into PIL images and
    audio items into Clips."""

    @staticmethod
    def looks_like_image(item: str) -> bool:
        return looks_like_image(item)

    @staticmethod
    def looks_like_audio(item: str) -> bool:
        return looks_like_audio(item)

    def __init__(
        self,
        settings: Settings,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`resolver` and `ssl_context` (the CAs trusted for https downloads; default: httpx's
        certifi bundle) are seams for tests."""
        self._settings = settings
        self._resolver = resolver
        self._ssl_context = ssl_context
        self._decode_slots = asyncio.Semaphore(settings.max_concurrent_decodes)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        s = self._settings
        guard = GuardedBackend(
            httpcore.AnyIOBackend(),
            allow_private=s.http_client_allow_private_networks,
            resolver=self._resolver,
        )
        transport = PoolTransport(
            guard,
            ssl_context=self._ssl_context or httpx.create_ssl_context(),
            limits=httpx.Limits(
                max_connections=s.http_client_max_connections,
                max_keepalive_connections=s.http_client_max_keepalive_connections,
            ),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(s.http_client_timeout),
            headers={"User-Agent": s.http_client_user_agent},
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment may bypass the guard
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def load(self, items: list[tuple[int, str]]) -> list[Any]:
        """Fetch and check every item concurrently, check the request's pixel budget, then
        decode (at most MAX_CONCURRENT_DECODES at a time in this process).

        Raises:
            ServiceError: naming the first failing item, e.g. `input[2]: image download
                failed: HTTP 404 from https://...`.
        """
        opened = await _each(items, self._open)
        self._check_pixel_budget([index for index, _ in items], opened)
        indexed = [(index, img) for (index, _), img in zip(items, opened, strict=True)]
        return await _each(indexed, self._decode)

    async def load_audio(
        self, items: list[tuple[int, str]], seconds: float | None = None
    ) -> list[Clip]:
        """Fetch every audio item and read its header concurrently, check the request's
        audio budget, then decode each (at most MAX_CONCURRENT_DECODES decodes at a time in
        this process), each read up to `seconds` (a model's window) or MAX_AUDIO_SECONDS.

        Raises:
            ServiceError: naming the first failing item, e.g. `input[1]: audio declares
                36000.0 s, over the 600 s allowed (MAX_AUDIO_SECONDS)`.
        """
        s = self._settings
        limits = AudioLimits(s.max_audio_seconds, s.max_audio_channels, s.max_audio_sample_rate)
        fetched = await _each(items, lambda item: self._bytes(item, AUDIO, s.max_audio_bytes))
        indexed = [(index, data) for (index, _), data in zip(items, fetched, strict=True)]
        probes = await _each(indexed, lambda data: asyncio.to_thread(probe_audio, data, limits))
        total = 0.0
        for (index, _), probe in zip(items, probes, strict=True):
            total += min(probe.seconds, seconds or probe.seconds)
            if total > s.max_request_audio_seconds:
                raise ServiceError(
                    ErrorKind.TOO_LARGE,
                    At(
                        ("input", index),
                        f": the request's audio reaches {total:.1f} s to decode here, over "
                        f"the {s.max_request_audio_seconds:g} s allowed per request "
                        "(MAX_REQUEST_AUDIO_SECONDS)",
                    ),
                    param="input",
                    code="audio_too_long",
                )

        async def decode(data: bytes) -> Clip:
            async with self._decode_slots:
                return await asyncio.to_thread(decode_audio, data, limits, seconds)

        return await _each(indexed, decode)

    async def _bytes(self, item: str, kind: Kind, limit: int) -> bytes:
        """The bytes an item holds or names: downloaded, from its data URI, or bare base64."""
        if is_url(item):
            return await self._download(item, kind, limit)
        if item[:5].lower() == "data:":
            match = kind.data_uri.match(item)
            if match is None:
                raise ItemError(
                    f"data URI must look like data:{kind.name}/<type>;base64,<data>",
                    code=f"invalid_{kind.name}",
                )
            item = item[match.end() :]
        elif "://" in item[:16]:
            raise ItemError("only http and https URLs are supported", code="unsupported_scheme")
        if len(item) < INLINE_ON_LOOP:
            return self._b64decode(item, kind, limit)
        return await asyncio.to_thread(self._b64decode, item, kind, limit)  # off the event loop

    async def _open(self, item: str) -> Any:
        s = self._settings
        data = await self._bytes(item, IMAGE, s.max_image_bytes)
        return await asyncio.to_thread(open_image, data, s.max_image_side, s.max_image_aspect_ratio)

    async def _decode(self, img: Any) -> Any:
        async with self._decode_slots:
            return await asyncio.to_thread(decode_image, img, self._settings.max_image_side)

    def _check_pixel_budget(self, indices: list[int], opened: list[Any]) -> None:
        """Refuse the request at the first item (in input order) whose decoded pixels take
        the running total over MAX_REQUEST_PIXELS."""
        budget = self._settings.max_request_pixels
        total = 0
        for index, img in zip(indices, opened, strict=True):
            total += img.width * img.height
            if total > budget:
                raise ServiceError(
                    ErrorKind.TOO_LARGE,
                    At(
                        ("input", index),
                        f": the request's images reach {total} decoded pixels here, "
                        f"over the {budget} allowed per request (MAX_REQUEST_PIXELS)",
                    ),
                    param="input",
                    code="image_too_large",
                )

    def _b64decode(self, payload: str, kind: Kind, limit: int) -> bytes:
        if len(payload) * 3 // 4 > limit + 3:
            raise _too_large(limit, kind)
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ItemError(f"invalid base64 {kind.name} data", code="invalid_base64") from None
        if len(data) > limit:
            raise _too_large(limit, kind)
        return data

    async def _download(self, url: str, kind: Kind, limit: int) -> bytes:
        timeout = self._settings.http_client_timeout
        failed = f"{kind.name}_fetch_failed"
        try:
            async with asyncio.timeout(timeout):
                return await self._follow(url, kind, limit)
        except TimeoutError:
            raise ItemError(
                f"{kind.name} download failed: timed out after {timeout:g}s from {url}",
                code=failed,
            ) from None
        except BlockedAddress as exc:
            raise ItemError(
                f"{kind.name} download refused: {exc}", code="blocked_address"
            ) from None
        except httpx.InvalidURL:
            raise ItemError(f"invalid {kind.name} URL {url}", code="invalid_url") from None
        except httpx.ConnectError as exc:
            raise ItemError(
                f"{kind.name} download failed: {connect_failure(exc)} from {url}", code=failed
            ) from None
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            raise ItemError(
                f"{kind.name} download failed: {reason} from {url}", code=failed
            ) from None

    async def _follow(self, url: str, kind: Kind, limit: int) -> bytes:
        assert self._client is not None, "MediaFetcher.start() was not called"
        failed = f"{kind.name}_fetch_failed"
        current = httpx.URL(url)
        for _hop in range(MAX_REDIRECTS + 1):
            if current.scheme not in ("http", "https"):
                raise ItemError("only http and https URLs are supported", code="unsupported_scheme")
            async with self._client.stream(
                "GET", current, headers={"Accept": kind.accept}
            ) as response:
                if response.is_redirect:
                    current = current.join(response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise ItemError(
                        f"{kind.name} download failed: HTTP {response.status_code} from {url}",
                        code=failed,
                    )
                ctype = response.headers.get("content-type", "").lower()
                if ctype and not ctype.startswith(kind.accepted):
                    raise ItemError(
                        f"not {kind.not_one}: {url} answered content-type {ctype.split(';')[0]}",
                        code=f"not_{kind.not_one.replace(' ', '_')}",
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _too_large(limit, kind)
                body = bytearray()
                async for chunk in response.aiter_bytes(CHUNK):
                    body += chunk
                    if len(body) > limit:
                        raise _too_large(limit, kind)
                return bytes(body)
        raise ItemError(
            f"{kind.name} download failed: more than {MAX_REDIRECTS} redirects from {url}",
            code=failed,
        )
