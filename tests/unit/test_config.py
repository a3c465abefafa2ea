"""Settings from the environment: defaults, normalisation, and one clear line per bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_settings
from tests.support.paths import ROOT


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.database_url == "sqlite:///var/catalog.db"
    assert settings.cache_url == "file://./var/cache"
    assert settings.embedded
    assert settings.deletion_grace_seconds == 60
    assert settings.deletion_interval_seconds == 30
    assert settings.max_deletion_retries == 5
    assert settings.parallel_refresh_count == 4
    assert settings.source_connect_timeout_seconds == 10
    assert 1 <= settings.source_read_streams <= 4  # one per core, at most 4
    assert settings.refresh_job_timeout_seconds == 3600
    assert settings.orphan_min_age_seconds == 7200
    assert settings.job_result_ttl_seconds == 86400
    assert settings.file_sources_dir == tmp_path.resolve() / "var" / "sources"
    assert settings.schedule_poll_seconds == 15
    assert settings.schedule_max_failures == 10


def test_file_sources_dir_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"FILE_SOURCES_DIR": "link/../link"})
    assert settings.file_sources_dir == tmp_path.resolve() / "real"


def test_embedded_secret_key_is_generated_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = load_settings({}).secret_key
    assert len(first) >= 32
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o077 == 0
    assert load_settings({}).secret_key == first


def test_secret_key_is_required_outside_embedded_mode() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("sqlite:////srv/catalog.db", "sqlite:////srv/catalog.db"),
    ],
)
def test_database_url_is_normalised(given: str, expected: str) -> None:
    settings = load_settings({"DATABASE_URL": given, "SECRET_KEY": "k"})
    assert settings.database_url == expected


def test_rediss_url_is_accepted_and_tls_url_wins() -> None:
    settings = load_settings(
        {
            "REDIS_URL": "redis://127.0.0.1:6379",
            "REDIS_TLS_URL": "rediss://h:6380",
            "SECRET_KEY": "k",
        }
    )
    assert settings.redis_url == "rediss://h:6380"
    assert not settings.embedded


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DELETION_GRACE_SECONDS", "-1"),
        ("DELETION_INTERVAL_SECONDS", "0"),
        ("MAX_DELETION_RETRIES", "five"),
        ("PARALLEL_REFRESH_COUNT", "0"),
        ("SOURCE_CONNECT_TIMEOUT_SECONDS", "1.5"),
        ("SOURCE_READ_STREAMS", "0"),
        ("REFRESH_JOB_TIMEOUT_SECONDS", "-10"),
        ("ORPHAN_MIN_AGE_SECONDS", "soon"),
        ("JOB_RESULT_TTL_SECONDS", "0"),
        ("DATABASE_URL", "mongodb://h/db"),
        ("CACHE_URL", "ftp://h/x"),
        ("CACHE_URL", "s3://"),
        ("CACHE_URL", "file:///srv/cache?x=1"),
        ("REDIS_URL", "http://h"),
        ("S3_ENDPOINT_URL", "127.0.0.1:8333"),
        ("FILE_SOURCES_DIR", "/etc/passwd"),
        ("SCHEDULE_POLL_SECONDS", "0"),
        ("SCHEDULE_MAX_FAILURES", "never"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value, "SECRET_KEY": "k"})


def test_bad_value_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "config"],
        cwd=ROOT,
        env={"PARALLEL_REFRESH_COUNT": "lots", "SECRET_KEY": "k", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "configuration error: PARALLEL_REFRESH_COUNT must be a whole number, got 'lots'"
    ]


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"CACHE_URL": f"s3://bucket/{'p' * 209}"},
            "configuration error: CACHE_URL: the prefix of an s3:// cache URL is at most 208 "
            "bytes, so that every key fits in S3's 1024; got 209",
        ),
        (
            {"CACHE_URL": "s3://bucket/cache", "S3_ENDPOINT_URL": "http://a b"},
            "configuration error: S3_ENDPOINT_URL is not a valid endpoint URL: 'http://a b'",
        ),
    ],
)
@pytest.mark.parametrize("process", [["-m", "config"], ["-m", "workers.scheduler"]])
def test_a_storage_no_setting_can_open_stops_start_up_with_one_line(
    environ: dict[str, str], line: str, process: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, *process],
        cwd=ROOT,
        env={
            **environ,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "SECRET_KEY": "k",
            "DATABASE_URL": f"sqlite:///{tmp_path}/catalog.db",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [line]


@pytest.mark.parametrize("cache_url", ["ftp://nowhere", f"s3://bucket/{'p' * 215}"])
def test_create_app_exits_with_the_configuration_error(
    cache_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app import create_app

    monkeypatch.chdir(tmp_path)  # the embedded defaults live under ./var
    monkeypatch.setenv("CACHE_URL", cache_url)
    monkeypatch.setenv("SECRET_KEY", "k")
    with pytest.raises(SystemExit, match="configuration error: CACHE_URL"):
        create_app()


def test_printed_settings_never_show_a_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "config"],
        cwd=ROOT,
        env={
            "DATABASE_URL": "postgres://app:db-pass-1@db.internal:5432/catalog",
            "REDIS_URL": "redis://:redis-pass-2@cache.internal:6379/0",
            "SECRET_KEY": "secret-key-3",
            "API_TOKEN": "token-4",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    for secret in ("db-pass-1", "redis-pass-2", "secret-key-3", "token-4"):
        assert secret not in result.stdout
    assert "DATABASE_URL=postgresql+psycopg://app:***@db.internal:5432/catalog" in result.stdout
    assert "REDIS_URL=redis://:***@cache.internal:6379/0" in result.stdout
