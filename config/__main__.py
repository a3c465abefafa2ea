"""``python -m config``: check the environment and print the effective settings (no secrets).

Checked as every process reads it: the settings, then what they open (the storage that
``CACHE_URL`` and ``S3_ENDPOINT_URL`` name), so that ``bin/run`` stops on its first line.
"""

from __future__ import annotations

import dataclasses
import sys
from urllib.parse import urlsplit, urlunsplit

from config.settings import ConfigError, load_settings
from refresh.runtime import Runtime

SECRET_FIELDS = {"secret_key", "api_token"}
MASK = "***"


def main() -> int:
    try:
        settings = load_settings()
        Runtime.from_settings(settings)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 1
    for name, value in dataclasses.asdict(settings).items():
        print(f"{name.upper()}={shown(name, value)}")
    return 0


def shown(name: str, value: object) -> object:
    """Secrets as ``(set)``; a URL's password (DATABASE_URL, REDIS_URL) masked."""
    if name in SECRET_FIELDS:
        return "(set)" if value else value
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password is not None:
            user = parts.username or ""
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}{port}"))
    return value


if __name__ == "__main__":
    sys.exit(main())
