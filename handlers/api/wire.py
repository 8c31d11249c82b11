"""Reply bodies on the wire: JSON bytes with float32 vectors printed as float32, or plain values."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps", "plain"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def dumps(body: Any) -> bytes:
    """JSON bytes of a reply body whose vectors are numpy rows: each float32 value in its
    shortest float32 form (about 9 digits where Python floats print 17), never through a
    Python float."""
    return orjson.dumps(body, option=_OPTIONS)


def plain(body: Any) -> Any:
    """The body as plain JSON values (dicts, lists, floats) with the same digits as
    `dumps`, for transports that serialise it themselves (RunPod, BentoML's APIs)."""
    return orjson.loads(dumps(body))
