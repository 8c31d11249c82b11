"""SettingsError: the one-line error every invalid configuration value raises."""

from __future__ import annotations

__all__ = ["SettingsError", "invalid"]


class SettingsError(ValueError):
    """A configuration value is invalid; the message is one line naming variable and value."""


def invalid(variable: str, values: tuple[object, ...], problem: str, allowed: str) -> SettingsError:
    """A SettingsError for a value already parsed into `values` (a `;`-list joined back)."""
    value = ";".join(map(str, values))
    return SettingsError(f"{variable}={value!r}: {problem}; allowed: {allowed}")
