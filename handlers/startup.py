"""Start-up failures, for every entry point: the one line and the exit status that end one."""

from __future__ import annotations

__all__ = ["EXIT_START_FAILED", "failure_line"]

EXIT_START_FAILED = 3  # uvicorn's own code for "Application startup failed"


def failure_line(exc: Exception) -> str:
    """The one line that ends a failed start: a setting only checkable once the model is
    loaded (settings.SettingsError), or a model that could not be loaded."""
    from handlers.settings_error import SettingsError

    kind = "configuration error" if isinstance(exc, SettingsError) else "start-up failed"
    return f"{kind}: {exc}"
