"""What every entry point (web, worker, scheduler, CLI) needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from refresh.catalog import Catalog
from refresh.common.crypto import SecretBox
from refresh.storage import S3Timeouts, Storage, open_storage


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    catalog: Catalog
    storage: Storage
    secrets: SecretBox

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            catalog=Catalog(settings.database_url),
            storage=open_storage(
                settings.cache_url,
                settings.s3_endpoint_url,
                S3Timeouts(
                    connect=settings.s3_connect_timeout_seconds,
                    read=settings.s3_read_timeout_seconds,
                    attempts=settings.s3_max_attempts,
                ),
            ),
            secrets=SecretBox(settings.secret_key),
        )
