"""Each input tokenised once on its way to the model, through the real engines: no text
passes through a tokenizer twice, and vectors, scores and usage stay the oracles'."""

from __future__ import annotations

import numpy as np
from transformers import PreTrainedTokenizerBase

from handlers.core.dispatch import Core
from handlers.engine.text_tokenizer import TextTokenizer
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.oracles import embed_oracle, image_text_oracle, rerank_scores, usage_tokens
from tests.tiny_models import WORDS


def embed(core: Core, texts: list[str], model: str):
    return core.dispatch("/v1/embeddings", {"model": model, "input": texts})


async def test_each_input_is_tokenised_once_on_its_way_to_the_model(
    make_core, tiny_models, monkeypatch
):
    """Embeddings (truncate true and false), rerank with a windowed document and CLIP texts:
    each text is tokenised once, by the model's tokenizer copy, and the model's own
    tokenizer call (the pre-process that tokenised each batch again) is never made; the
    vectors, scores and usage stay the oracle's."""
    core = await make_core()
    model_calls: list[tuple] = []
    tokenised: list[str] = []
    call, tokens = PreTrainedTokenizerBase.__call__, TextTokenizer.tokens

    def spy_call(self, *args, **kwargs):
        model_calls.append(args)
        return call(self, *args, **kwargs)

    def spy_tokens(self, texts):
        tokenised.extend(texts)
        return tokens(self, texts)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", spy_call)
    monkeypatch.setattr(TextTokenizer, "tokens", spy_tokens)
    texts = ["the quick brown fox", "a cat", " hello world test query "]
    default = await embed(core, texts, EMBED_ID)
    strict = {"model": EMBED_ID, "input": texts, "truncate": False}
    exact = await core.dispatch("/v1/embeddings", strict)
    long_doc = " ".join(WORDS[i % len(WORDS)] for i in range(300))  # past 128: windows
    docs = ["paris is the capital", long_doc, "a dog"]
    query = "capital of france"
    ranked = await core.dispatch(
        "/v1/rerank", {"model": RERANK_ID, "query": query, "documents": docs, "raw_scores": True}
    )
    clip = await embed(core, ["a photo of a cat", "a dog"], model=CLIP_ID)
    monkeypatch.undo()

    assert model_calls == []
    assert sorted(tokenised) == sorted([*texts, *texts, query, *docs, "a photo of a cat", "a dog"])
    want = embed_oracle(tiny_models[EMBED_ID], texts)
    for reply in (default, exact):
        got = np.array([d["embedding"] for d in reply["data"]])
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert reply["usage"]["total_tokens"] == usage_tokens(tiny_models[EMBED_ID], texts)
    scores = {r["index"]: r["relevance_score"] for r in ranked["results"]}
    short = [0, 2]
    expected = rerank_scores(tiny_models[RERANK_ID], query, [docs[i] for i in short], True)
    for i, score in zip(short, expected, strict=True):
        assert abs(scores[i] - score) <= 1e-4
    got = np.array([d["embedding"] for d in clip["data"]])
    want = image_text_oracle(tiny_models[CLIP_ID], texts=["a photo of a cat", "a dog"])
    np.testing.assert_allclose(got, want, atol=1e-5)


async def test_a_slow_tokenizers_texts_are_tokenised_once(make_core, family_models, monkeypatch):
    """SigLIP (a slow SentencePiece tokenizer): each text goes through the tokenizer once,
    with and without truncate=false; the vectors stay the oracle's."""
    folder = family_models["siglip"]
    core = await make_core(model_names=str(folder), served_model_names="siglip")
    tokenised: list[str] = []
    call = PreTrainedTokenizerBase.__call__

    def spy_call(self, text=None, *args, **kwargs):
        tokenised.extend([text] if isinstance(text, str) else text or [])
        return call(self, text, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", spy_call)
    texts = ["a photo of a cat", " a dog ", "the quick brown fox"]
    default = await embed(core, texts, model="siglip")
    body = {"model": "siglip", "input": texts, "truncate": False}
    exact = await core.dispatch("/v1/embeddings", body)
    monkeypatch.undo()

    assert sorted(tokenised) == sorted(texts * 2)
    want = image_text_oracle(folder, texts=texts)
    for reply in (default, exact):
        got = np.array([d["embedding"] for d in reply["data"]])
        np.testing.assert_allclose(got, want, atol=1e-5)
