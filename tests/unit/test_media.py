"""MediaFetcher in-process against the loopback image host: forms, limits, redirects."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import threading

import pytest
from PIL import Image

from handlers.errors import ErrorKind, ServiceError
from handlers.media import addresses
from handlers.media import fetcher as media
from handlers.media.addresses import system_resolver
from handlers.media.fetcher import MediaFetcher
from handlers.media.kinds import looks_like_image
from tests.imagehost import TestCA, TLSImageHost, encoded, png_bytes


@pytest.fixture
async def make_fetcher(make_settings):
    """Started fetchers (private networks allowed, 1 s timeout, 200 kB cap unless overridden),
    stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(resolver=system_resolver, ssl_context=None, **env: str) -> MediaFetcher:
            env = {
                "http_client_allow_private_networks": "true",
                "http_client_timeout": "1",
                "max_image_bytes": "200000",
                **env,
            }
            fetcher = MediaFetcher(make_settings(**env), resolver, ssl_context)
            await fetcher.start()
            stack.push_async_callback(fetcher.stop)
            return fetcher

        yield make


@pytest.fixture
async def fetcher(make_fetcher):
    return await make_fetcher()


def stub_resolver(table: dict[str, list[str]]):
    """A resolver that answers from `table` (test host names to loopback addresses)."""

    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


async def failure(fetcher, *items: str) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        await fetcher.load(list(enumerate(items)))
    return info.value


def test_auto_classification():
    assert looks_like_image("https://x.test/a.png")
    assert looks_like_image("HTTP://x.test/a.png")
    assert looks_like_image("data:image/png;base64,AAAA")
    assert not looks_like_image("a photo of a cat")
    assert not looks_like_image(base64.b64encode(png_bytes()).decode())
    assert not looks_like_image("ftp://x.test/a.png")
    assert not looks_like_image("data: q3 revenue was up")
    assert not looks_like_image("data:text/plain;base64,aGVsbG8=")
    assert not looks_like_image("Data: see the appendix")


async def test_every_form_decodes_to_the_same_rgb_image(fetcher, image_host):
    raw = png_bytes()
    b64 = base64.b64encode(raw).decode()
    images = await fetcher.load(
        list(
            enumerate(
                [
                    f"{image_host.url}/red.png",
                    f"data:image/png;base64,{b64}",
                    b64,
                    f"{image_host.url}/redirect?to=/red.png",
                    f"{image_host.url}/cmyk.jpg",
                ]
            )
        )
    )
    assert all(img.mode == "RGB" for img in images)
    assert images[0].tobytes() == images[1].tobytes() == images[2].tobytes()
    assert images[3].tobytes() == images[0].tobytes()


@pytest.mark.parametrize(
    ("path", "kind", "fragment"),
    [
        ("/missing.png", ErrorKind.INVALID, "image download failed: HTTP 404 from"),
        ("/page.html", ErrorKind.INVALID, "not an image"),
        ("/huge.png", ErrorKind.TOO_LARGE, "larger than 200000 bytes"),
        ("/bomb.png", ErrorKind.TOO_LARGE, "pixel limit"),
        ("/bomb-medium.png", ErrorKind.TOO_LARGE, "pixel limit"),
        ("/truncated.png", ErrorKind.INVALID, "not a decodable image"),
        ("/slow.png", ErrorKind.INVALID, "timed out after 1s"),
        ("/hang.png", ErrorKind.INVALID, "timed out after 1s"),
        ("/reset.png", ErrorKind.INVALID, "image download failed: "),
    ],
)
async def test_download_failures_name_the_item(fetcher, image_host, path, kind, fragment):
    error = await failure(fetcher, f"{image_host.url}/red.png", f"{image_host.url}{path}")
    assert error.kind is kind
    assert error.message.startswith("input[1]: ")
    assert fragment in error.message


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("data:image/png;base64,@@@@", "invalid base64"),
        ("data:text/plain;base64,aGVsbG8=", "data URI must look like"),
        ("not base64 at all!", "invalid base64"),
        (base64.b64encode(b"just some bytes").decode(), "not a decodable image"),
        ("ftp://127.0.0.1/a.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("data:image/png;base64," + "A" * 300_000, "larger than 200000 bytes"),
        (base64.b64encode(png_bytes(size=2)).decode(), "minimum is 3x3"),
    ],
)
async def test_inline_failures(fetcher, item, fragment):
    error = await failure(fetcher, item)
    assert error.message.startswith("input[0]: ") and fragment in error.message


async def test_redirect_to_a_blocked_address_is_refused_at_that_hop(
    make_settings, image_host, monkeypatch
):
    # Only 127.0.0.1 is allowed in this test, so the redirect target (127.0.0.2: loopback
    # too, so nothing leaves the machine even if the guard failed) is a blocked address.
    monkeypatch.setattr(addresses, "is_blocked", lambda ip: ip != "127.0.0.1")
    strict = MediaFetcher(make_settings())
    await strict.start()
    target = f"http://127.0.0.2:{image_host.port}/red.png"
    before = len(image_host.requests)
    try:
        error = await failure(strict, f"{image_host.url}/redirect?to={target}")
    finally:
        await strict.stop()
    assert "blocked address" in error.message and "127.0.0.2" in error.message
    assert image_host.requests[before:] == [f"/redirect?to={target}"]


async def test_too_many_redirects(fetcher, image_host):
    url = f"{image_host.url}/loop"
    error = await failure(fetcher, url)
    assert "more than 5 redirects" in error.message


async def test_several_failures_report_the_first_and_count(fetcher, image_host):
    error = await failure(fetcher, "@@", f"{image_host.url}/red.png", "%%")
    assert error.message.startswith("input[0]: ") and "(1 more item(s) failed)" in error.message


async def test_next_resolved_address_is_tried_when_one_refuses(make_fetcher, image_host):
    # Nothing listens on 127.0.0.2 at the image host's port: that connect is refused.
    resolver = stub_resolver({"images.test": ["127.0.0.2", "127.0.0.1"]})
    fetcher = await make_fetcher(resolver)
    (image,) = await fetcher.load([(0, f"http://images.test:{image_host.port}/red.png")])
    assert image.size == (40, 40)


@pytest.fixture(scope="module")
def test_ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="module")
def tls_host(test_ca, tmp_path_factory):
    """The image host over TLS on 127.0.0.1 with a certificate for images.test only."""
    context = test_ca.server_context("images.test", tmp_path_factory.mktemp("tls"))
    with TLSImageHost(context) as host:
        yield host


@pytest.fixture
async def tls_fetcher(make_fetcher, test_ca):
    resolver = stub_resolver({"images.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    return await make_fetcher(resolver, test_ca.client_context())


async def test_https_checks_the_certificate_against_the_url_host_name(tls_fetcher, tls_host):
    (image,) = await tls_fetcher.load([(0, f"https://images.test:{tls_host.port}/red.png")])
    assert image.size == (40, 40) and tls_host.requests == ["/red.png"]


async def test_https_refuses_a_certificate_for_another_host(tls_fetcher, tls_host):
    error = await failure(tls_fetcher, f"https://other.test:{tls_host.port}/red.png")
    assert error.kind is ErrorKind.INVALID
    assert error.message.startswith("input[0]: image download failed: TLS certificate check")
    assert "other.test" in error.message


def inline(data: bytes) -> str:
    return base64.b64encode(data).decode()


def animated_gif(*colors: tuple[int, int, int]) -> bytes:
    frames = [Image.new("RGB", (40, 40), color) for color in colors]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "source", "size"),
    [
        ("PNG", (640, 480), (64, 48)),
        ("JPEG", (2000, 1000), (64, 32)),  # decoded at 1/8 scale (draft), then shrunk
        ("PNG", (400, 20), (64, 3)),  # a 20:1 image keeps a 3-pixel side
        ("PNG", (40, 40), (40, 40)),  # never enlarged
    ],
)
async def test_images_are_shrunk_to_the_maximum_side(make_fetcher, fmt, source, size):
    fetcher = await make_fetcher(max_image_side="64")
    (image,) = await fetcher.load([(0, inline(encoded(fmt, source)))])
    assert image.mode == "RGB" and image.size == size


@pytest.mark.parametrize("size", [(4, 20_000), (20_000, 4), (3, 61)])
async def test_aspect_ratio_over_the_limit_is_refused(fetcher, size):
    error = await failure(fetcher, inline(png_bytes()), inline(encoded("PNG", size)))
    assert error.kind is ErrorKind.INVALID
    ratio = f"{max(size) / min(size):.1f}".removesuffix(".0")
    assert error.message.startswith(f"input[1]: image is {size[0]}x{size[1]} pixels")
    assert f"aspect ratio of {ratio}:1; at most 20:1" in error.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
async def test_accepted_formats_decode(fetcher, fmt):
    (image,) = await fetcher.load([(0, inline(encoded(fmt)))])
    assert image.mode == "RGB" and image.size == (40, 40)


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "ICO", "TGA"])
async def test_other_formats_are_refused_by_name(fetcher, fmt):
    error = await failure(fetcher, inline(encoded(fmt)))
    assert error.kind is ErrorKind.INVALID
    assert error.message == (
        f"input[0]: image format {fmt} is not accepted; send JPEG, PNG, WebP, GIF or BMP"
    )


async def test_animated_gif_uses_its_first_frame(fetcher):
    (image,) = await fetcher.load([(0, inline(animated_gif((250, 0, 0), (0, 0, 250))))])
    red, _, blue = image.getpixel((20, 20))
    assert red > 200 and blue < 50


async def test_request_pixel_budget_names_the_item_that_exceeds_it(make_fetcher):
    fetcher = await make_fetcher(max_request_pixels="5000")
    three = [inline(png_bytes())] * 3  # 3 x 1600 pixels fit
    assert len(await fetcher.load(list(enumerate(three)))) == 3
    error = await failure(fetcher, *three, inline(png_bytes()))
    assert error.kind is ErrorKind.TOO_LARGE
    assert error.message.startswith("input[3]: the request's images reach 6400 decoded pixels")
    assert "MAX_REQUEST_PIXELS" in error.message


async def test_decodes_beyond_the_bound_wait_their_turn(make_fetcher, monkeypatch):
    fetcher = await make_fetcher(max_concurrent_decodes="2")
    original = media.decode_image
    lock, pair = threading.Lock(), threading.Barrier(2, timeout=10)
    running, peak = 0, 0

    def counting(*args):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        pair.wait()  # proves two decodes do run at the same time
        with lock:
            running -= 1
        return original(*args)

    monkeypatch.setattr(media, "decode_image", counting)
    images = await fetcher.load(list(enumerate([inline(png_bytes())] * 6)))
    assert len(images) == 6 and peak == 2


async def test_decode_errors_are_400_for_the_item(fetcher):
    cut = encoded("JPEG", (200, 200))[:400]  # the header parses, the data ends early
    error = await failure(fetcher, inline(png_bytes()), inline(cut))
    assert error.kind is ErrorKind.INVALID
    assert error.message == "input[1]: not a decodable image (OSError)"


async def test_out_of_memory_while_decoding_is_a_logged_503(fetcher, monkeypatch, caplog):
    def exhausted(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "convert", exhausted)
    with caplog.at_level(logging.ERROR, logger="handlers.media.decode"):
        error = await failure(fetcher, inline(png_bytes()))
    assert error.kind is ErrorKind.NOT_READY and error.status == 503 and error.retry_after
    assert error.message.startswith("input[0]: not enough memory to decode this image")
    assert any("Out of memory" in record.getMessage() for record in caplog.records)
