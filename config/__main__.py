"""``python -m config``: check the environment and print the effective settings (no secrets)."""

from __future__ import annotations

import dataclasses
import sys

from config.settings import ConfigError, load_settings

SECRET_FIELDS = {"secret_key", "api_token"}


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 1
    for name, value in dataclasses.asdict(settings).items():
        shown = "(set)" if name in SECRET_FIELDS and value else value
        print(f"{name.upper()}={shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
