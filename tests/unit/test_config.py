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


def test_secrets_can_be_read_from_files(tmp_path):
    (tmp_path / "token").write_text("discord-token-123\n")
    (tmp_path / "key").write_text("sk-local\n")
    (tmp_path / "uri").write_text("mongodb://user:pw@db:27017\n")
    settings = make(
        discord_token_file=str(tmp_path / "token"),
        openai_api_key_file=str(tmp_path / "key"),
        mongodb_uri_file=str(tmp_path / "uri"),
    )
    assert settings.discord_token.get_secret_value() == "discord-token-123"
    assert settings.openai_api_key.get_secret_value() == "sk-local"
    assert settings.mongodb_uri.get_secret_value() == "mongodb://user:pw@db:27017"


def test_an_empty_value_beside_its_file_is_fine_and_both_set_is_an_error(tmp_path):
    (tmp_path / "token").write_text("from-file")
    settings = make(discord_token="", discord_token_file=str(tmp_path / "token"))
    assert settings.discord_token.get_secret_value() == "from-file"
    with pytest.raises(ValidationError) as caught:
        make(discord_token="inline-secret", discord_token_file=str(tmp_path / "token"))
    (line,) = describe_errors(caught.value)
    assert line == "invalid settings: set DISCORD_TOKEN or DISCORD_TOKEN_FILE, not both"
    assert "inline-secret" not in line and "from-file" not in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), ("", "is empty"), ("   \n", "is empty")],
)
def test_a_missing_or_empty_secret_file_is_named(tmp_path, content, expected):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValidationError) as caught:
        make(discord_token_file=str(path))
    (line,) = describe_errors(caught.value)
    assert "DISCORD_TOKEN_FILE" in line and expected in line


def test_budget_and_access_settings_parse(monkeypatch):
    monkeypatch.setenv("CHAT_DAILY_TOKENS", "50000")
    monkeypatch.setenv("SANDBOX_DAILY_SECONDS", "")
    monkeypatch.setenv("ALLOWED_GUILD_IDS", "123, 456")
    monkeypatch.setenv("ALLOW_DMS", "false")
    settings = Settings(_env_file=None)
    assert settings.chat_daily_tokens == 50000 and settings.sandbox_daily_seconds is None
    assert settings.allowed_guilds == {123, 456} and settings.allow_dms is False
    monkeypatch.setenv("ALLOWED_CHANNEL_IDS", "general")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)
    assert describe_errors(caught.value)[0].startswith("invalid setting ALLOWED_CHANNEL_IDS=")
