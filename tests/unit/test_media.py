"""ImageFetcher in-process against the loopback image host: forms, limits, redirects."""

from __future__ import annotations

import base64

import pytest

from handlers import addresses
from handlers.errors import ErrorKind, ServiceError
from handlers.media import ImageFetcher, looks_like_image
from tests.imagehost import png_bytes


@pytest.fixture
async def fetcher(make_settings):
    fetcher = ImageFetcher(
        make_settings(
            http_client_allow_private_networks="true",
            http_client_timeout="1",
            max_image_bytes="200000",
        )
    )
    await fetcher.start()
    yield fetcher
    await fetcher.stop()


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
    strict = ImageFetcher(make_settings())
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
