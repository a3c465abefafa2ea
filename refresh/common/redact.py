"""Removal of secrets from text that may reach a response, a log line or a job record."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Drivers echo connection strings in their errors, sometimes URL-encoded; mask every form."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, MASK)
    return text
