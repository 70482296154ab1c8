"""Raises while it is imported, as a module whose own setup fails would (bad settings, say)."""

from __future__ import annotations


class SettingsError(Exception):
    pass


raise SettingsError("LOG_LEVEL: 'LOUD' is not a log level")


def handler(event: object, context: object) -> None:  # pragma: no cover - never imported
    return None
