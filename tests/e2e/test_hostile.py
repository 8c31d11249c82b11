"""A catalogue of hostile inputs against the real service: each gets its status, OpenAI shape."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.imagehost import png_bytes

E, R = "/v1/embeddings", "/v1/rerank"


def _gif_animated() -> str:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return base64.b64encode(buf.getvalue()).decode()


def _cmyk_jpeg() -> str:
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 100, 100, 0)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def emb(**extra):
    return {"model": EMBED_ID, "input": "hello", **extra}


def img(items):
    return {"model": CLIP_ID, "input": items, "modality": "image"}


NESTED = "[" * 5000 + "]" * 5000
# (name, route, body: dict or raw bytes, expected status, fragment of the message or None)
CASES = [
    ("empty body", E, b"", 400, "not valid JSON"),
    ("malformed json", E, b'{"model": ', 400, "not valid JSON"),
    ("json array body", E, b"[1, 2]", 400, "JSON object"),
    ("json string body", E, b'"hello"', 400, "JSON object"),
    ("json null body", E, b"null", 400, "JSON object"),
    ("deep nesting", E, NESTED.encode(), 400, None),
    ("nested input", E, {"model": EMBED_ID, "input": [[["a"]]]}, 400, "token-id"),
    ("NaN literal", E, b'{"model": "m", "input": "a", "dimensions": NaN}', 400, "not valid JSON"),
    (
        "Infinity literal",
        R,
        b'{"model": "m", "query": "q", "docs": [], "top_n": Infinity}',
        400,
        "not valid JSON",
    ),
    ("dimensions float", E, emb(dimensions=1.5), 400, "dimensions"),
    ("dimensions negative", E, emb(dimensions=-3), 400, "dimensions"),
    ("dimensions huge", E, emb(dimensions=10**30), 400, "dimensions"),
    ("dimensions string", E, emb(dimensions="eight"), 400, "dimensions"),
    ("dimensions numeric string", E, emb(dimensions="8"), 400, "dimensions"),
    ("dimensions integral float", E, emb(dimensions=8.0), 200, None),
    (
        "raw_scores as number",
        R,
        {"model": RERANK_ID, "query": "q", "docs": ["a"], "raw_scores": 0},
        400,
        "raw_scores",
    ),
    ("model number", E, {"model": 7, "input": "a"}, 400, "model"),
    ("model null", E, {"model": None, "input": "a"}, 400, "model"),
    ("model empty", E, {"model": "", "input": "a"}, 404, "is not deployed"),
    ("model unicode", E, {"model": "模型\u202e", "input": "a"}, 404, "is not deployed"),
    ("input number", E, {"model": EMBED_ID, "input": 5}, 400, "input"),
    ("input object", E, {"model": EMBED_ID, "input": {"a": 1}}, 400, "input"),
    ("input bool list", E, {"model": EMBED_ID, "input": [True]}, 400, "input[0]"),
    ("input null item", E, {"model": EMBED_ID, "input": ["a", None]}, 400, "input[1]"),
    ("too many items", E, {"model": EMBED_ID, "input": ["a"] * 2049}, 413, "MAX_CLIENT_BATCH"),
    (
        "too many chars",
        E,
        {"model": EMBED_ID, "input": ["a" * 600_000] * 15},
        413,
        "MAX_TOTAL_CHARS",
    ),
    (
        "body over cap",
        E,
        b'{"model": "m", "input": "' + b"a" * (70 * 1024 * 1024) + b'"}',
        413,
        "MAX_REQUEST_BYTES",
    ),
    ("encoding bogus", E, emb(encoding_format="int4"), 400, "encoding_format"),
    ("modality bogus", E, emb(modality="video"), 400, "Invalid modality: 'video'"),
    ("modality number", E, emb(modality=3), 400, "Invalid modality: 3"),
    ("audio", E, emb(modality="audio"), 400, "does not expose the 'audio' capability"),
    ("unknown fields ignored", E, emb(foo={"bar": [1]}), 200, None),
    (
        "unicode edge cases",
        E,
        {
            "model": EMBED_ID,
            "input": ["\u0000", "\ud7ff\ufffd", "🙂" * 500, "\u202e\u200b", "e\u0301" * 300],
        },
        200,
        None,
    ),
    ("long single text", E, {"model": EMBED_ID, "input": "word " * 20_000}, 200, None),
    ("empty string", E, emb(input=""), 200, None),
    ("rerank docs not list", R, {"model": RERANK_ID, "query": "q", "docs": "abc"}, 400, "docs"),
    ("rerank query null", R, {"model": RERANK_ID, "query": None, "docs": ["a"]}, 400, "query"),
    (
        "rerank top_n zero",
        R,
        {"model": RERANK_ID, "query": "q", "docs": ["a"], "top_n": 0},
        400,
        "top_n",
    ),
    (
        "rerank top_n beyond",
        R,
        {"model": RERANK_ID, "query": "q", "docs": ["a"], "top_n": 99},
        200,
        None,
    ),
    (
        "rerank too many docs",
        R,
        {"model": RERANK_ID, "query": "q", "docs": ["a"] * 2049},
        413,
        "MAX_CLIENT_BATCH",
    ),
    (
        "rerank on embedder",
        R,
        {"model": EMBED_ID, "query": "q", "docs": ["a"]},
        400,
        "Detected capabilities: embed.",
    ),
    ("image bad base64", E, img(["!!!notbase64"]), 400, "input[0]: invalid base64"),
    (
        "image truncated",
        E,
        img([base64.b64encode(png_bytes()[:50]).decode()]),
        400,
        "not a decodable image",
    ),
    ("image animated gif", E, img([_gif_animated()]), 200, None),
    ("image cmyk", E, img([_cmyk_jpeg()]), 200, None),
    ("image tiny", E, img([base64.b64encode(png_bytes(size=1)).decode()]), 400, "3x3"),
    ("image file scheme", E, img(["file:///etc/passwd"]), 400, "only http and https"),
    ("image gopher scheme", E, img(["gopher://127.0.0.1:70/"]), 400, "only http and https"),
    ("image data uri not image", E, img(["data:text/html;base64,PGI+"]), 400, "data URI"),
    ("image bad url", E, img(["http://[::1"]), 400, "input[0]"),
    (
        "image list with text model",
        E,
        {"model": EMBED_ID, "input": ["x"], "modality": "image"},
        400,
        "does not expose the 'image' capability",
    ),
]


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as session:
        yield session


@pytest.mark.parametrize(
    ("name", "route", "body", "status", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_input(http, name, route, body, status, fragment):
    if isinstance(body, bytes):
        response = http.post(route, content=body, headers={"content-type": "application/json"})
    else:
        response = http.post(route, json=body)
    assert response.status_code == status, response.text[:500]
    payload = response.json()
    if status >= 400:
        assert set(payload) == {"error"}
        assert set(payload["error"]) == {"message", "type", "param", "code"}
        assert "Traceback" not in response.text
        if fragment:
            assert fragment in payload["error"]["message"]
    assert http.get("/readyz").status_code == 200  # still serving


def test_catalogue_is_large_enough():
    assert len(CASES) >= 40


def test_wrong_method_and_unknown_route(http):
    for response, allow in (
        (http.get("/v1/embeddings"), "POST"),
        (http.put("/v1/rerank"), "POST"),
        (http.post("/v1/models"), "GET"),
    ):
        assert response.status_code == 405 and response.headers["allow"] == allow
        assert set(response.json()) == {"error"}
    unknown = http.get("/v1/x")
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
