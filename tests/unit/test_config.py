import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.config import Settings, describe_errors, parse_size


def make(**env):
    return Settings(_env_file=None, **env)


def test_defaults_are_safe():
    s = make()
    assert s.code_execution_timeout == 300
    assert s.sandbox_runtime == "runc"
    assert s.sandbox_memory == 1024**3
    assert s.host_data_dir is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("512m", 512 * 1024**2),
        ("1g", 1024**3),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("65536", 65536),
        ("64k", 65536),
        ("2 MB", 2 * 1024**2),
        (4096, 4096),
    ],
)
def test_sizes_parse(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "", "-1g", "0", "1x", "1.2.3m"])
def test_bad_sizes_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"CODE_EXECUTION_TIMEOUT": "-5"}, "CODE_EXECUTION_TIMEOUT"),
        ({"SANDBOX_RUNTIME": "kata"}, "SANDBOX_RUNTIME"),
        ({"SANDBOX_MEMORY": "lots"}, "SANDBOX_MEMORY"),
        ({"SANDBOX_MEMORY": "1m"}, "SANDBOX_MEMORY"),
        ({"SANDBOX_CPUS": "0"}, "SANDBOX_CPUS"),
        ({"SANDBOX_PIDS_LIMIT": "many"}, "SANDBOX_PIDS_LIMIT"),
        ({"SANDBOX_MAX_OUTPUT_FILES": "0"}, "SANDBOX_MAX_OUTPUT_FILES"),
        ({"HOST_DATA_DIR": "relative/path"}, "HOST_DATA_DIR"),
        ({"SANDBOX_INSTANCE": "has space"}, "SANDBOX_INSTANCE"),
        ({"FILE_EXPIRATION_HOURS": "0"}, "FILE_EXPIRATION_HOURS"),
        ({"FILE_EXPIRATION_HOURS": "-2"}, "FILE_EXPIRATION_HOURS"),
        ({"MAX_FILES_PER_USER": "0"}, "MAX_FILES_PER_USER"),
        ({"MAX_FILE_SIZE_MB": "-1"}, "MAX_FILE_SIZE_MB"),
        ({"CLEANUP_INTERVAL_MINUTES": "0"}, "CLEANUP_INTERVAL_MINUTES"),
    ],
)
def test_invalid_values_name_the_variable(monkeypatch, env, variable):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    lines = describe_errors(info.value)
    assert len(lines) == 1
    assert variable in lines[0] and "\n" not in lines[0]


def test_cli_fails_at_start_with_one_readable_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SANDBOX_MEMORY": "lots", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "doctor"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "invalid setting SANDBOX_MEMORY='lots': expected a size like 512m or 1g, got 'lots'"
    ]
    assert "Traceback" not in proc.stderr


def test_files_never_expire_with_minus_one(monkeypatch):
    monkeypatch.setenv("FILE_EXPIRATION_HOURS", "-1")
    assert Settings(_env_file=None).file_expiration_hours == -1


def test_mongodb_uri_is_never_shown(monkeypatch):
    monkeypatch.setenv("MONGODB_URI", "mongodb://admin:hunter2@db:27017")
    settings = Settings(_env_file=None)
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
