"""Cohere, Voyage and Jina embeddings fields in the core (fake backend): honoured as the
same request under our names, or refused by name; input objects; token-id arrays."""

from __future__ import annotations

import pytest

from handlers.core.dispatch import Core
from handlers.errors import ErrorKind
from tests.fake_media import FakeImage, FakeMedia
from tests.fakes import FakeBackend
from tests.helpers import embed_error, vectors_of


def same(left, right) -> bool:
    return [list(map(float, v)) if not isinstance(v, str) else v for v in left] == [
        list(map(float, v)) if not isinstance(v, str) else v for v in right
    ]


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ({"output_dimension": 4}, {"dimensions": 4}),  # Voyage, Cohere v2
        ({"output_dtype": "int8"}, {"embedding_type": "int8"}),  # Voyage
        (
            {"output_dtype": "ubinary", "encoding_format": "base64"},
            {"embedding_type": "ubinary", "encoding_format": "base64"},
        ),
        ({"embedding_types": ["uint8"]}, {"embedding_type": "uint8"}),  # Cohere
        ({"embedding_type": "base64"}, {"encoding_format": "base64"}),  # Jina
        ({"output_dimension": None, "late_chunking": False}, {}),  # null / off: nothing
    ],
)
async def test_other_apis_fields_give_what_ours_give(core, theirs, ours):
    assert same(await vectors_of(core, **theirs), await vectors_of(core, **ours))
    assert not same(await vectors_of(core, **ours), await vectors_of(core)) or not ours


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ({"truncation": False}, {"truncate": False}),  # Voyage
        ({"truncate": "NONE"}, {"truncate": False}),  # Cohere
        ({"truncate": "START"}, {"truncation_direction": "left"}),
        ({"truncate": "END"}, {"truncation_direction": "right"}),
        ({"task": "query"}, {"prompt_name": "query"}),  # Jina
        ({"normalized": False}, {"normalize": False}),  # Jina
    ],
)
async def test_other_apis_fields_reach_the_model_as_ours(make_settings, theirs, ours):
    seen = []
    for body in (theirs, ours):
        backend = FakeBackend()
        core = Core(make_settings(), backend, FakeMedia())
        await vectors_of(core, **body)
        seen.append((backend.calls, backend.keys, backend.lengths))
    assert seen[0] == seen[1]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {"late_chunking": True},
            "late_chunking",
            "late_chunking (Jina's late chunking) is not supported",
        ),
        ({"return_multivector": True}, "return_multivector", "return_multivector"),
        ({"max_tokens": 8}, "max_tokens", "max_tokens (Cohere's per-input token limit"),
        (
            {"dimensions": 4, "output_dimension": 2},
            "output_dimension",
            "output_dimension contradicts dimensions=4",
        ),
        (
            {"embedding_types": ["float", "int8"]},
            "embedding_types",
            "POST /v2/embed returns several",
        ),
        (
            {"truncate": "MIDDLE"},
            "truncate",
            "'MIDDLE' is not a boolean nor one of NONE, START, END",
        ),
        (
            {"task": "query", "input_type": "query"},
            "input_type",
            "Send input_type or task, not both.",
        ),
        ({"output_dtype": "float64"}, "embedding_type", "embedding_type: Input should be"),
    ],
)
async def test_fields_that_cannot_be_honoured_are_refused_by_name(
    core, backend, body, param, message
):
    error = await embed_error(core, **body)
    assert error.kind is ErrorKind.INVALID and error.param == param
    assert message in error.message
    assert backend.calls == []


async def test_an_unknown_task_names_the_models_prompts(core):
    error = await embed_error(core, task="retrieval.query")
    assert (error.param, error.code) == ("task", "unknown_prompt")
    assert error.message == (
        "Model 'embedder' has no prompt 'retrieval.query'. Its prompts: query, document."
    )


async def test_input_objects_are_embedded_by_their_own_modality(make_settings):
    backend = FakeBackend()
    core = Core(make_settings(), backend, FakeMedia())
    items = [{"text": "a cat"}, {"image": "https://example.com/cat.jpg"}, "https://x.y/z.png"]
    reply = await core.dispatch("/v1/embeddings", {"model": "clip", "input": items})
    assert len(reply["data"]) == 3
    # the plain string follows the request's modality (text), the objects their own
    assert backend.calls == [
        ("embed", ["a cat", FakeImage("https://example.com/cat.jpg"), "https://x.y/z.png"])
    ]
    as_image = await core.dispatch(
        "/v1/embeddings", {"model": "clip", "modality": "image", "input": [{"text": "a cat"}]}
    )
    assert backend.calls[-1] == ("embed", ["a cat"])  # the object wins over the request
    assert len(as_image["data"]) == 1


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"text": "a", "image": "b"},
            "input[1]: an input object has one field, 'text', 'image' or 'audio' (got 'text', "
            "'image').",
        ),
        ({"video": "v"}, "input[1]: an input object has one field"),
        ({"text": 3}, "input[1].text: should be a string."),
    ],
)
async def test_bad_input_objects_are_400_by_index(core, item, message):
    error = await embed_error(core, input=["ok", item])
    assert error.kind is ErrorKind.INVALID and error.message.startswith(message)


async def test_an_image_object_needs_an_image_model(core, backend):
    error = await embed_error(core, input=[{"image": "https://example.com/a.png"}])
    assert error.code == "model_capability" and backend.calls == []


TEXTS = ["The quick brown fox jumps over the lazy dog.", "naïve café — 東京"]


async def test_token_arrays_are_refused_naming_both_fixes(core, cl100k):
    ids = cl100k.encode(TEXTS[0])
    error = await embed_error(core, input=[ids])
    assert "check_embedding_ctx_length=False" in error.message
    assert "TOKEN_ARRAYS=cl100k" in error.message


@pytest.fixture
def cl100k_core(make_settings, backend) -> Core:
    return Core(make_settings(TOKEN_ARRAYS="cl100k"), backend, FakeMedia())


async def test_cl100k_token_arrays_embed_as_the_texts_they_encode(cl100k_core, backend, cl100k):
    arrays = [cl100k.encode(text) for text in TEXTS]
    assert same(
        await vectors_of(cl100k_core, input=arrays), await vectors_of(cl100k_core, input=TEXTS)
    )
    assert same(
        await vectors_of(cl100k_core, input=arrays[0]),
        await vectors_of(cl100k_core, input=TEXTS[:1]),
    )
    assert backend.calls[0] == ("embed", TEXTS)


async def test_cl100k_refuses_ids_outside_the_vocabulary(cl100k_core):
    error = await embed_error(cl100k_core, input=[[1, 2], [3, 100256]])
    assert error.message == "input[1]: 100256 is not a cl100k_base token id"
    mixed = await embed_error(cl100k_core, input=[[1, "a"]])
    assert mixed.message == "input[0]: a token-id array holds integers only"


# ----------------------------------------------------------------- Cohere's embed routes
async def test_cohere_v1_embed_defaults_to_floats_and_v2_to_a_float_key(core):
    body = {"model": "embedder", "texts": ["a b", "c"], "input_type": "search_query"}
    v1 = await core.dispatch("/v1/embed", body)
    expected = await vectors_of(core, input=["a b", "c"], input_type="search_query")
    assert v1["response_type"] == "embeddings_floats" and same(v1["embeddings"], expected)
    assert v1["texts"] == ["a b", "c"] and v1["meta"]["api_version"] == {"version": "1"}
    # the fake counts words + 2: "query: a b" and "query: c", the prompt counted
    assert v1["meta"]["billed_units"]["input_tokens"] == (3 + 2) + (2 + 2)
    v2 = await core.dispatch("/v2/embed", body)
    assert v2["response_type"] == "embeddings_by_type" and set(v2["embeddings"]) == {"float"}
    assert same(v2["embeddings"]["float"], expected)


async def test_cohere_embedding_types_come_from_one_pass(core, backend):
    body = {"model": "embedder", "texts": ["a b"], "output_dimension": 4}
    types = ["float", "int8", "ubinary", "base64"]
    reply = await core.dispatch("/v2/embed", {**body, "embedding_types": types})
    assert [name for name, _ in backend.calls] == ["embed"]
    for kind in ("int8", "ubinary"):
        assert same(
            reply["embeddings"][kind], await vectors_of(core, dimensions=4, embedding_type=kind)
        )
    floats = await vectors_of(core, dimensions=4, encoding_format="base64")
    assert reply["embeddings"]["base64"] == floats


async def test_cohere_inputs_and_images_are_embedded_as_images(core, backend):
    url = "https://example.com/a.png"
    inputs = [
        {"content": [{"type": "image_url", "image_url": {"url": url}}]},
        {"content": [{"type": "text", "text": "a cat"}]},
    ]
    reply = await core.dispatch("/v2/embed", {"model": "clip", "inputs": inputs})
    assert backend.calls[-1] == ("embed", [FakeImage(url), "a cat"]) and reply["texts"] == ["a cat"]
    await core.dispatch("/v2/embed", {"model": "clip", "images": [url], "input_type": "image"})
    assert backend.calls[-1] == ("embed", [FakeImage(url)])


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({}, "texts", "Send one of texts, images or inputs."),
        ({"texts": ["a"], "images": ["b"]}, "images", "not texts and images"),
        ({"texts": ["a"], "max_tokens": 5}, "max_tokens", "max_tokens (Cohere's"),
        (
            {"inputs": [{"content": [{"type": "text", "text": "a"}] * 2}]},
            "inputs",
            "inputs[0]: this server embeds one content part per input (got 2 parts).",
        ),
        (
            {"inputs": [{"content": [{"type": "audio"}]}]},
            "inputs",
            "inputs[0].content[0]: a part is",
        ),
        (
            {"texts": ["a"], "embedding_types": ["float16"]},
            "embedding_types",
            "embedding_types[0]: Input should be",
        ),
        ({"texts": ["a"], "truncate": "MIDDLE"}, "truncate", "truncate: Input should be"),
    ],
)
async def test_cohere_embed_errors_name_the_field(core, backend, body, param, message):
    error = await embed_error(core, "/v2/embed", **{"model": "embedder", "input": None, **body})
    assert error.kind is ErrorKind.INVALID and error.param == param
    assert message in error.message
    assert backend.calls == []


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ({"dimensions": None, "output_dimension": 4}, {"dimensions": 4}),  # null is no value
        ({"embedding_types": None}, {}),
        ({"truncation": True, "truncate": "END"}, {}),  # two names that agree
        ({"truncation": False, "truncate": "NONE"}, {"truncate": False}),
        ({"truncate": "end"}, {}),  # any case, as Cohere's API
    ],
)
async def test_null_and_agreeing_fields_are_accepted(core, theirs, ours):
    assert same(await vectors_of(core, **theirs), await vectors_of(core, **ours))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),  # 0 is a value, not "off"
        ({"late_chunking": 0.0}, "late_chunking"),
        ({"embedding_types": []}, "embedding_types"),
        ({"truncation": True, "truncate": "NONE"}, "truncation"),
    ],
)
async def test_values_that_are_on_or_disagree_are_refused(core, body, param):
    assert (await embed_error(core, **body)).param == param


async def test_token_ids_past_the_character_limit_are_413_before_decoding(make_settings):
    core = Core(
        make_settings(TOKEN_ARRAYS="cl100k", MAX_TOTAL_CHARS="10"), FakeBackend(), FakeMedia()
    )
    error = await embed_error(core, input=[[1] * 6, [2] * 6])
    assert error.kind is ErrorKind.TOO_LARGE and error.code == "too_many_characters"
    assert error.message == (
        "The request holds 12 token ids; at most 10 are allowed (MAX_TOTAL_CHARS)."
    )


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {"texts": ["a"], "output_dimension": 999},
            "output_dimension",
            "output_dimension=999 exceeds",
        ),
        ({"texts": ["a", "b " * 30], "truncate": "NONE"}, "texts", "texts[1] has 32 tokens"),
        ({"images": ["https://x.y/a.png"]}, "model", "does not expose the 'image' capability"),
    ],
)
async def test_cohere_errors_use_cohere_names(core, body, param, message):
    error = await embed_error(core, "/v2/embed", **{"model": "embedder", "input": None, **body})
    assert error.param == param and message in error.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (  # the first item of a pydantic error list is renamed, the text around it is not
            {"texts": ["a", 7], "output_dimension": 0},
            "texts[1]: Input should be a valid string; output_dimension: Input should be "
            "greater than 0",
        ),
        (  # a word of the client's own in the message stays as it was sent
            {"model": "clip", "images": ["bad input", "bad dimensions"]},
            "images[0]: bad image 'bad input'",
        ),
        (
            {
                "model": "clip",
                "inputs": [{"content": [{"type": "image_url", "image_url": "bad-dimensions"}]}],
            },
            "inputs[0]: bad image 'bad-dimensions'",
        ),
    ],
)
async def test_cohere_names_rename_locations_only(core, body, message):
    error = await embed_error(core, "/v2/embed", **{"model": "embedder", "input": None, **body})
    assert error.message == message


async def test_cohere_embed_without_a_model_needs_one_embedder(core, make_settings):
    error = await embed_error(core, "/v1/embed", **{"model": None, "texts": ["a"]})
    assert error.message == (
        "model: Field required (this server serves 2 embedding models: embedder, clip)."
    )
