"""The media loader's stand-in: image and audio references 'decoded' to FakeImage and
FakeClip, items containing 'bad' refused as the real loader names a failing item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.errors import At, ErrorKind, ServiceError
from handlers.media.kinds import looks_like_audio, looks_like_image

if TYPE_CHECKING:
    from handlers.core.dispatch import MediaLoader


@dataclass(frozen=True)
class FakeMedium:
    """A 'decoded' media item: its kind and the reference it came from."""

    ref: str

    @property
    def kind(self) -> str:
        return type(self).__name__.removeprefix("Fake").lower()


class FakeImage(FakeMedium):
    """What FakeMedia 'decodes' an image reference to."""


@dataclass(frozen=True)
class FakeClip(FakeMedium):
    """What FakeMedia 'decodes' an audio reference to: `seconds` long ('long' in it: an
    hour)."""

    seconds: float = 2.0


class FakeMedia:
    """Media loader stand-in: items containing 'bad' fail, as the real one names them."""

    @staticmethod
    def looks_like_image(item: str) -> bool:
        return looks_like_image(item)

    @staticmethod
    def looks_like_audio(item: str) -> bool:
        return looks_like_audio(item)

    async def load(self, items: list[tuple[int, str]]) -> list[Any]:
        _refuse_bad(items, "image")
        return [FakeImage(item) for _, item in items]

    async def load_audio(
        self, items: list[tuple[int, str]], seconds: float | None = None
    ) -> list[Any]:
        _refuse_bad(items, "audio")
        return [FakeClip(item, 3600.0 if "long" in item else 2.0) for _, item in items]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _refuse_bad(items: list[tuple[int, str]], kind: str) -> None:
    for index, item in items:
        if "bad" in item:
            raise ServiceError(
                ErrorKind.INVALID, At(("input", index), f": bad {kind} {item!r}"), param="input"
            )


if TYPE_CHECKING:  # the type checker (make test) holds the fake to the seam it stands in for
    _media: MediaLoader = FakeMedia()
