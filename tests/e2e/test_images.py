"""Image and multimodal embeddings end to end: real service, tiny CLIP, loopback image host."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import CLIP_ID, EMBED_ID
from tests.imagehost import png_bytes


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def embed(url: str, items, modality: str, **extra) -> httpx.Response:
    body = {"model": CLIP_ID, "input": items, "modality": modality, **extra}
    return httpx.post(f"{url}/v1/embeddings", json=body, timeout=30)


def vectors(response: httpx.Response) -> list[np.ndarray]:
    assert response.status_code == 200, response.text
    return [np.array(d["embedding"]) for d in response.json()["data"]]


def test_image_urls_with_the_openai_sdk(client, image_host):
    result = client.embeddings.create(
        model=CLIP_ID,
        input=[f"{image_host.url}/red.png", f"{image_host.url}/blue.jpg"],
        encoding_format="float",
        extra_body={"modality": "image"},
    )
    red, blue = (np.array(d.embedding) for d in result.data)
    assert red.shape == (16,) and np.isclose(np.linalg.norm(red), 1.0, atol=1e-4)
    assert not np.allclose(red, blue)


def test_url_data_uri_and_bare_base64_give_the_same_embedding(server, image_host):
    b64 = base64.b64encode(png_bytes()).decode()
    red_url, data_uri, bare = vectors(
        embed(
            server.url, [f"{image_host.url}/red.png", f"data:image/png;base64,{b64}", b64], "image"
        )
    )
    assert np.allclose(red_url, data_uri, atol=1e-5) and np.allclose(red_url, bare, atol=1e-5)


def test_auto_keeps_order_and_matches_pure_requests(server, image_host):
    image = f"{image_host.url}/blue.jpg"
    mixed = vectors(embed(server.url, ["a red dress", image, "blue shoe"], "auto"))
    texts = vectors(embed(server.url, ["a red dress", "blue shoe"], "text"))
    (pure_image,) = vectors(embed(server.url, [image], "image"))
    assert np.allclose(mixed[0], texts[0], atol=1e-5)
    assert np.allclose(mixed[2], texts[1], atol=1e-5)
    assert np.allclose(mixed[1], pure_image, atol=1e-5)


def test_auto_embeds_text_starting_with_data_as_text(server):
    text = "data: q3 revenue was up"
    (auto,) = vectors(embed(server.url, [text], "auto"))
    (as_text,) = vectors(embed(server.url, [text], "text"))
    assert np.allclose(auto, as_text, atol=1e-5)


def test_text_modality_embeds_a_url_as_text(server, image_host):
    before = len(image_host.requests)
    url = f"{image_host.url}/red.png"
    (as_text,) = vectors(embed(server.url, [url], "text"))
    (as_image,) = vectors(embed(server.url, [url], "image"))
    assert not np.allclose(as_text, as_image)
    assert len(image_host.requests) == before + 1  # only the image request fetched it


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/missing.png", 400, "image download failed: HTTP 404 from"),
        ("/slow.png", 400, "timed out after 2s"),
        ("/page.html", 400, "not an image"),
        ("/huge.png", 413, "larger than 200000 bytes"),
        ("/bomb.png", 413, "pixel limit"),
        ("/truncated.png", 400, "not a decodable image"),
        ("/narrow.png", 400, "image is 4x20000 pixels, an aspect ratio of 5000:1; at most 20:1"),
    ],
)
def test_download_failures_are_index_aware(server, image_host, path, status, fragment):
    response = embed(server.url, ["a caption", f"{image_host.url}{path}"], "auto")
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].startswith("input[1]: ") and fragment in error["message"]
    assert error["param"] == "input"


def test_modality_errors(server):
    audio = embed(server.url, ["x"], "audio")  # a CLIP model takes no audio
    assert audio.status_code == 400
    assert "does not expose the 'audio' capability" in audio.json()["error"]["message"]
    video = embed(server.url, ["x"], "video")
    assert video.status_code == 400
    assert video.json()["error"]["message"] == (
        "Invalid modality: 'video'. Supported: text, image, audio, auto"
    )


def test_text_only_model_refuses_images(server, image_host):
    response = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"model": EMBED_ID, "input": [f"{image_host.url}/red.png"], "modality": "image"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"Model '{EMBED_ID}' does not expose the 'image' capability. Detected capabilities: embed."
    )


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "localhost"]
)
def test_default_policy_refuses_loopback_and_sends_nothing(locked_server, image_host, host):
    before = len(image_host.requests)
    response = httpx.post(
        f"{locked_server.url}/v1/embeddings",
        json={
            "model": CLIP_ID,
            "input": [f"http://{host}:{image_host.port}/red.png"],
            "modality": "image",
        },
        headers={"Authorization": "Bearer test-secret-key"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert (
        "input[0]: image download refused: blocked address" in response.json()["error"]["message"]
    )
    assert len(image_host.requests) == before


def test_clip_text_is_read_to_the_text_towers_length_over_http(server, tiny_models):
    """Not config.max_length (20): an 18-word text and its 36-word continuation differ, each
    equal to the model's own processor + get_text_features; max_input_tokens is 77."""
    from tests.oracles import image_text_oracle
    from tests.tiny_models import WORDS

    words = (WORDS * 2)[:36]
    texts = [" ".join(words[:18]), " ".join(words)]
    short, long = vectors(embed(server.url, texts, "text"))
    assert np.dot(short, long) < 0.999
    oracle = image_text_oracle(tiny_models[CLIP_ID], texts=texts)
    assert min(np.dot(short, oracle[0]), np.dot(long, oracle[1])) >= 0.9999
    cards = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    assert {c["id"]: c["max_input_tokens"] for c in cards}[CLIP_ID] == 77
