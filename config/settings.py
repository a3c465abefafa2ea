"""Settings of every process, read from the environment once at start-up (12-factor).

A bad value stops the process with one line naming the variable, so a misconfigured dyno fails at
boot instead of at the first refresh.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

VAR_DIR = Path("var")
# Connections reading one PostgreSQL table at once: one per core (up to 4) keeps every core of
# the worker busy without piling connections onto the source (PARALLEL_REFRESH_COUNT tables
# each take this many).
DEFAULT_READ_STREAMS = min(4, os.cpu_count() or 1)


class ConfigError(Exception):
    """A variable of the environment has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    cache_url: str
    s3_endpoint_url: str | None
    s3_connect_timeout_seconds: int
    s3_read_timeout_seconds: int
    s3_max_attempts: int
    api_token: str | None
    secret_key: str
    deletion_grace_seconds: int
    deletion_interval_seconds: int
    max_deletion_retries: int
    parallel_refresh_count: int
    source_connect_timeout_seconds: int
    source_read_streams: int
    source_stall_timeout_seconds: int
    refresh_wait_seconds: int
    refresh_job_timeout_seconds: int
    orphan_min_age_seconds: int
    job_result_ttl_seconds: int
    file_sources_dir: Path
    schedule_poll_seconds: int
    schedule_max_failures: int

    @property
    def embedded(self) -> bool:
        return _embedded(self.redis_url)


def _embedded(redis_url: str | None) -> bool:
    """The one rule of embedded mode: without Redis, jobs and the deletion sweep run inside the
    web process (and a deployment's own settings, such as ``SECRET_KEY``, may be generated)."""
    return redis_url is None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    redis_url = _redis_url(env)
    return Settings(
        database_url=_database_url(env.get("DATABASE_URL") or f"sqlite:///{VAR_DIR}/catalog.db"),
        redis_url=redis_url,
        cache_url=_cache_url(env.get("CACHE_URL") or f"file://./{VAR_DIR}/cache"),
        s3_endpoint_url=_optional_http_url(env, "S3_ENDPOINT_URL"),
        s3_connect_timeout_seconds=_int(env, "S3_CONNECT_TIMEOUT_SECONDS", 5, minimum=1),
        s3_read_timeout_seconds=_int(env, "S3_READ_TIMEOUT_SECONDS", 60, minimum=1),
        s3_max_attempts=_int(env, "S3_MAX_ATTEMPTS", 3, minimum=1),
        api_token=env.get("API_TOKEN") or None,
        secret_key=_secret_key(env.get("SECRET_KEY"), embedded=_embedded(redis_url)),
        deletion_grace_seconds=_int(env, "DELETION_GRACE_SECONDS", 60, minimum=0),
        deletion_interval_seconds=_int(env, "DELETION_INTERVAL_SECONDS", 30, minimum=1),
        max_deletion_retries=_int(env, "MAX_DELETION_RETRIES", 5, minimum=1),
        parallel_refresh_count=_int(env, "PARALLEL_REFRESH_COUNT", 4, minimum=1),
        source_connect_timeout_seconds=_int(env, "SOURCE_CONNECT_TIMEOUT_SECONDS", 10, minimum=1),
        source_read_streams=_int(env, "SOURCE_READ_STREAMS", DEFAULT_READ_STREAMS, minimum=1),
        source_stall_timeout_seconds=_int(env, "SOURCE_STALL_TIMEOUT_SECONDS", 300, minimum=1),
        refresh_wait_seconds=_int(env, "REFRESH_WAIT_SECONDS", 30, minimum=0),
        refresh_job_timeout_seconds=_int(env, "REFRESH_JOB_TIMEOUT_SECONDS", 3600, minimum=1),
        orphan_min_age_seconds=_int(env, "ORPHAN_MIN_AGE_SECONDS", 7200, minimum=0),
        job_result_ttl_seconds=_int(env, "JOB_RESULT_TTL_SECONDS", 86400, minimum=1),
        file_sources_dir=_directory(env, "FILE_SOURCES_DIR", VAR_DIR / "sources"),
        schedule_poll_seconds=_int(env, "SCHEDULE_POLL_SECONDS", 15, minimum=1),
        schedule_max_failures=_int(env, "SCHEDULE_MAX_FAILURES", 10, minimum=1),
    )


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _directory(env: Mapping[str, str], name: str, default: Path) -> Path:
    """Absolute, symlinks resolved, once: a later chdir or a swapped link cannot move it.

    It need not exist yet; it must not be a file.
    """
    path = Path(os.path.realpath(env.get(name) or default))
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} must be a directory, got the file {path}")
    return path


def _database_url(url: str) -> str:
    """Heroku still hands out ``postgres://``, which SQLAlchemy 2 rejects; pick psycopg 3."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    for prefix in ("postgres", "postgresql"):
        if scheme == prefix:
            return "postgresql+psycopg" + url[len(prefix) :]
    if scheme in ("sqlite", "postgresql+psycopg"):
        return url
    raise ConfigError(
        "DATABASE_URL must start with sqlite://, postgres:// or postgresql://, "
        f"got {scheme or url!r}"
    )


def _redis_url(env: Mapping[str, str]) -> str | None:
    for name in ("REDIS_TLS_URL", "REDIS_URL"):
        url = env.get(name)
        if url:
            if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
                raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL")
            return url
    return None


def _cache_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigError(
            f"CACHE_URL names a directory or prefix: no ?query or #fragment, got {url!r}"
        )
    if parts.scheme == "file":
        if not (parts.netloc + parts.path):
            raise ConfigError("CACHE_URL file:// needs a directory, e.g. file:///srv/cache")
        return url
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError("CACHE_URL s3:// needs a bucket, e.g. s3://my-bucket/prefix")
        return url
    raise ConfigError(f"CACHE_URL must be a file:// or s3:// URL, got {url!r}")


def _optional_http_url(env: Mapping[str, str], name: str) -> str | None:
    url = env.get(name) or None
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {url!r}")
    return url


def _secret_key(value: str | None, embedded: bool) -> str:
    """Embedded mode keeps a generated key beside the catalog; a deployment must bring its own."""
    if value:
        return value
    if not embedded:
        raise ConfigError("SECRET_KEY is required when REDIS_URL is set")
    path = VAR_DIR / "secret.key"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
