"""Task adapters: which of a folder's subfolders are LoRA adapters, and which prompt and
adapter a request's task, prompt_name or input_type picks."""

from __future__ import annotations

import json

import pytest

from handlers.core.prompts import prompt_for
from handlers.core.schemas import EmbeddingsRequest
from handlers.engine import adapters
from handlers.errors import ServiceError
from handlers.model_info import ModelInfo

INFO = ModelInfo(
    "jina",
    frozenset({"embed"}),
    "fake",
    8,
    1,
    prompts={"retrieval.query": "Q: ", "query": "q: ", "separation": ""},
    adapters=("retrieval_query", "separation", "text_matching"),
)


def request(**fields) -> EmbeddingsRequest:
    return EmbeddingsRequest.model_validate({"model": "jina", "input": ["a"], **fields})


def test_lora_subfolders_are_the_adapters(tmp_path):
    for name, config in {
        "retrieval_query": {"peft_type": "LORA", "r": 4},
        "text_matching": {"peft_type": "LORA", "r": 4},
        "prefix": {"peft_type": "PREFIX_TUNING"},
        "broken": "{not json",
    }.items():
        (tmp_path / name).mkdir()
        text = config if isinstance(config, str) else json.dumps(config)
        (tmp_path / name / "adapter_config.json").write_text(text)
    (tmp_path / "1_Pooling").mkdir()
    assert adapters.find(tmp_path) == ("retrieval_query", "text_matching")
    assert adapters.find(tmp_path / "missing") == () and adapters.find(None) == ()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"task": "retrieval.query"}, ("Q: ", "retrieval_query")),  # prompt and adapter
        ({"prompt_name": "text-matching"}, ("", "text_matching")),  # an adapter only
        ({"prompt_name": "separation"}, ("", "separation")),
        ({"prompt_name": "query"}, ("q: ", None)),  # a prompt only
        ({"input_type": "query"}, ("q: ", None)),  # input types name prompts, not adapters
        ({}, ("", None)),  # the base weights
    ],
)
def test_a_task_picks_the_prompt_and_the_adapter_of_its_name(fields, expected):
    assert prompt_for(request(**fields), INFO) == expected


def test_the_default_prompt_name_picks_its_adapter_too():
    info = ModelInfo(**{**INFO.__dict__, "default_prompt_name": "retrieval.query"})
    assert prompt_for(request(), info) == ("Q: ", "retrieval_query")


def test_a_name_of_neither_is_refused_naming_prompts_and_adapters():
    with pytest.raises(ServiceError) as refused:
        prompt_for(request(task="summarization"), INFO)
    assert (refused.value.param, refused.value.code) == ("task", "unknown_prompt")
    assert refused.value.message == (
        "Model 'jina' has no prompt 'summarization'. Its prompts: retrieval.query, query, "
        "separation. Its task adapters: retrieval_query, separation, text_matching."
    )


class Model:
    """Records the adapter calls a SentenceTransformer receives."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def load_adapter(self, path, adapter_name, adapter_kwargs):
        self.calls.append(("load", adapter_name, adapter_kwargs["subfolder"]))

    def disable_adapters(self):
        self.calls.append(("disable",))

    def enable_adapters(self):
        self.calls.append(("enable",))

    def set_adapter(self, name):
        self.calls.append(("set", name))


def test_the_switch_loads_inactive_and_changes_only_when_the_batch_asks(tmp_path):
    model = Model()
    switch = adapters.load(model, tmp_path, ("a", "b"))
    assert model.calls == [("load", "a", "a"), ("load", "b", "b"), ("disable",)]
    model.calls.clear()
    for name in ("a", "a", "b", None, None, "a"):
        switch.use(name)
    assert model.calls == [
        ("enable",),
        ("set", "a"),
        ("enable",),
        ("set", "b"),
        ("disable",),
        ("enable",),
        ("set", "a"),
    ]
