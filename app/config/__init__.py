"""Settings: read once from the environment and `.env` in `main()`, then passed down.

Every variable is listed in `.env.example` with its default and meaning. Invalid values stop the
program at start with one readable line per variable (see `describe_errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config.values import (
    DOMAIN,
    MODULE_LIST,
    RESERVED_UIDS,
    SERVICE_URL,
    ByteSize,
    IdList,
    check_token,
    parse_distribution_names,
    parse_ids,
    parse_import_names,
    parse_prices,
    parse_size,
    parse_uid_range,
)

__all__ = ["RESERVED_UIDS", "SECRETS", "Settings", "describe_errors", "parse_size"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Code execution
    code_execution_timeout: float = Field(300.0, gt=0, le=86400)

    # Sandbox containers
    sandbox_image: str = Field("codeinterp-sandbox:latest", min_length=1)
    sandbox_runtime: Literal["runc", "runsc"] = "runc"
    sandbox_memory: ByteSize = Field(1024**3, ge=64 * 1024**2)
    sandbox_cpus: float = Field(1.0, gt=0, le=256)
    sandbox_pids_limit: int = Field(128, ge=16, le=65536)
    sandbox_tmp_size: ByteSize = 256 * 1024**2
    sandbox_output_size: ByteSize = 100 * 1024**2
    sandbox_max_output_bytes: ByteSize = 1024**2
    sandbox_max_output_files: int = Field(20, ge=1, le=10000)
    sandbox_max_concurrent_runs: int = Field(4, ge=1, le=256)
    sandbox_max_code_bytes: ByteSize = 1024**2
    sandbox_instance: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    sandbox_uid_range: str = "20000-29999"
    sandbox_warm_pool_size: int = Field(2, ge=0, le=64)
    sandbox_warm_pool_max_age: float = Field(600.0, gt=0, le=86400)
    sandbox_warm_pool_max: int = Field(6, ge=0, le=64)
    sandbox_warm_preload: str = Field("numpy,pandas", pattern=MODULE_LIST)
    sandbox_warm_defer: str = Field("matplotlib,matplotlib.pyplot", pattern=MODULE_LIST)
    sandbox_warm_pool_memory: ByteSize = 6 * 1024**3

    # Session state: a conversation's names carried from run to run (docs/sessions.md)
    session_state: bool = True
    session_state_max_bytes: ByteSize = Field(256 * 1024**2, ge=1024**2, le=16 * 1024**3)
    session_state_timeout: float = Field(30.0, gt=0, le=3600)

    # Sandbox service (`python -m app sandboxd`, docs/scaling.md)
    sandbox_service_url: str = ""
    sandboxd_listen: str = ""
    sandbox_service_token: SecretStr | None = None
    sandbox_service_token_file: Path | None = None

    # Image build
    sandbox_base_image: str = Field("python:3.11-slim-bookworm", min_length=1)
    sandbox_pip_index_url: str = ""
    sandbox_pip_extra_index_url: str = ""

    # Package auto-install
    package_auto_install: bool = True
    package_approved: str = ""
    package_import_names: str = ""
    package_ca_bundle: Path | None = None
    package_proxy: str = ""
    package_install_timeout: float = Field(300.0, gt=0, le=3600)
    package_cache_days: float = Field(7.0, gt=0, le=3650)
    package_max_per_run: int = Field(5, ge=0, le=100)
    package_max_per_user_day: int = Field(20, ge=0, le=10_000)

    # Storage
    data_dir: Path = Path("data")
    host_data_dir: Path | None = None

    # MongoDB: file metadata, conversations, usage and budgets (empty: SQLite under DATA_DIR)
    mongodb_uri: SecretStr | None = None
    mongodb_uri_file: Path | None = None
    mongodb_database: str = Field("codeinterp", pattern=r"^[A-Za-z0-9_-]{1,63}$")

    # User files
    max_file_size_mb: float = Field(50, gt=0, le=100_000)
    max_files_per_user: int = Field(20, ge=1, le=100_000)
    file_expiration_hours: float = 48
    cleanup_interval_minutes: float = Field(60, gt=0, le=7 * 24 * 60)

    # Discord bot
    discord_token: SecretStr | None = None
    discord_token_file: Path | None = None
    admin_user_ids: IdList = ""
    chat_rate_limit: int = Field(10, ge=1, le=1000)
    chat_auto_thread: bool = False

    # Who may use the bot (empty lists: no restriction)
    allowed_guild_ids: IdList = ""
    allowed_channel_ids: IdList = ""
    allowed_role_ids: IdList = ""
    allow_dms: bool = True

    # Daily budgets per user, UTC day (empty: unlimited)
    chat_daily_tokens: int | None = Field(None, ge=1)
    chat_daily_cost_usd: float | None = Field(None, gt=0)
    sandbox_daily_seconds: float | None = Field(None, gt=0)

    # Model (any OpenAI-compatible Chat Completions endpoint)
    openai_base_url: str = ""
    openai_api_key: SecretStr = SecretStr("")
    openai_api_key_file: Path | None = None
    openai_model: str = Field("gpt-4o-mini", min_length=1)
    openai_allowed_models: str = ""
    openai_vision_models: str = "gpt-4o,gpt-4.1,gpt-5"
    openai_vision_max_image_size: ByteSize = 10 * 1024**2
    openai_streaming: bool = True
    openai_max_retries: int = Field(2, ge=0, le=10)
    openai_timeout: float = Field(120.0, gt=0, le=3600)
    openai_tools: Literal["auto", "on", "off"] = "auto"
    openai_context_window: int | None = Field(None, ge=1024, le=100_000_000)
    openai_prices: str = ""
    chat_max_tool_rounds: int = Field(6, ge=1, le=20)
    chat_max_tool_calls: int = Field(10, ge=1, le=200)
    chat_max_sandbox_seconds: float = Field(600.0, gt=0, le=86400)
    chat_max_upload_mb: float = Field(100, gt=0, le=100_000)
    chat_link_domains: str = ""
    chat_history_tokens: int = Field(12000, ge=500, le=1_000_000)

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    log_format: Literal["auto", "console", "json"] = "auto"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) and value else value or None

    @field_validator("discord_token", "mongodb_uri", "sandbox_service_token", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("sandbox_service_url", "sandboxd_listen")
    @classmethod
    def _service_address(cls, value: str) -> str:
        value = value.strip()
        if value and not SERVICE_URL.match(value):
            raise ValueError("expected unix:///absolute/path/to.sock or http://host:port")
        return value

    @field_validator("sandbox_service_token")
    @classmethod
    def _service_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_token(value.get_secret_value())
        return value

    @field_validator(
        "chat_daily_tokens",
        "chat_daily_cost_usd",
        "sandbox_daily_seconds",
        "openai_context_window",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_tools", mode="before")
    @classmethod
    def _lower_tools(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("openai_prices")
    @classmethod
    def _prices(cls, value: str) -> str:
        parse_prices(value)
        return value

    @field_validator(
        "discord_token_file",
        "openai_api_key_file",
        "mongodb_uri_file",
        "sandbox_service_token_file",
    )
    @classmethod
    def _secret_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file: give the path of a file that holds the secret")
        return value

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        """`<NAME>_FILE` (compose secrets, /run/secrets/...): the secret is that file's text."""
        for name in ("discord_token", "openai_api_key", "mongodb_uri", "sandbox_service_token"):
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            current = getattr(self, name)
            if current is not None and current.get_secret_value():
                raise ValueError(f"set {name.upper()} or {name.upper()}_FILE, not both")
            try:
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {name.upper()}_FILE {path}: {exc}") from None
            if not text:
                raise ValueError(f"{name.upper()}_FILE {path} is empty")
            setattr(self, name, SecretStr(text))
        return self

    @model_validator(mode="after")
    def _service_token_needed(self) -> Settings:
        """The sandbox service over TCP answers only requests that carry its token (after the
        secret files are read: the token may come from one)."""
        if self.sandbox_service_token is not None:
            check_token(self.sandbox_service_token.get_secret_value())
            return self
        for name in ("sandbox_service_url", "sandboxd_listen"):
            if getattr(self, name).startswith("http://"):
                raise ValueError(
                    f"{name.upper()} is http://..., so SANDBOX_SERVICE_TOKEN (or "
                    "SANDBOX_SERVICE_TOKEN_FILE) must be set: over TCP the sandbox service "
                    "answers only requests that carry it"
                )
        return self

    @property
    def admin_ids(self) -> frozenset[int]:
        return parse_ids(self.admin_user_ids)

    @property
    def allowed_guilds(self) -> frozenset[int]:
        return parse_ids(self.allowed_guild_ids)

    @property
    def allowed_channels(self) -> frozenset[int]:
        return parse_ids(self.allowed_channel_ids)

    @property
    def allowed_roles(self) -> frozenset[int]:
        return parse_ids(self.allowed_role_ids)

    @property
    def model_prices(self) -> dict[str, tuple[float, float, float | None]]:
        return parse_prices(self.openai_prices)

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """The models users may pick; the default model is always one of them."""
        listed = [m.strip() for m in self.openai_allowed_models.split(",") if m.strip()]
        return tuple(dict.fromkeys([self.openai_model, *listed]))

    @field_validator("chat_link_domains")
    @classmethod
    def _domains(cls, value: str) -> str:
        for domain in (d.strip() for d in value.split(",")):
            if domain and not DOMAIN.match(domain):
                raise ValueError(f"not a domain name: {domain!r} (give names like docs.python.org)")
        return value

    @property
    def link_domains(self) -> tuple[str, ...]:
        """CHAT_LINK_DOMAINS: domains whose links the bot leaves clickable (subdomains too)."""
        return tuple(
            d.strip().lower().strip(".") for d in self.chat_link_domains.split(",") if d.strip()
        )

    @property
    def vision_model_prefixes(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.openai_vision_models.split(",") if m.strip())

    @field_validator(
        "host_data_dir",
        "package_ca_bundle",
        "discord_token_file",
        "openai_api_key_file",
        "mongodb_uri_file",
        "sandbox_service_token_file",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("file_expiration_hours")
    @classmethod
    def _expiration(cls, value: float) -> float:
        if value != -1 and not value > 0:
            raise ValueError("must be a positive number of hours, or -1 to keep files forever")
        return value

    @field_validator("package_ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file: give a PEM file with the CA certificates to trust")
        return value

    @field_validator("sandbox_uid_range")
    @classmethod
    def _uid_range(cls, value: str) -> str:
        parse_uid_range(value)
        return value

    @property
    def code_uids(self) -> tuple[int, int]:
        """SANDBOX_UID_RANGE as (first, last)."""
        return parse_uid_range(self.sandbox_uid_range)

    @field_validator("package_approved")
    @classmethod
    def _approved_names(cls, value: str) -> str:
        parse_distribution_names(value)
        return value

    @field_validator("package_import_names")
    @classmethod
    def _import_names(cls, value: str) -> str:
        parse_import_names(value)
        return value

    @property
    def approved_packages(self) -> tuple[str, ...]:
        """PACKAGE_APPROVED, normalized; empty means the built-in list."""
        return parse_distribution_names(self.package_approved)

    @property
    def package_import_mapping(self) -> dict[str, str]:
        return parse_import_names(self.package_import_names)

    @field_validator("host_data_dir")
    @classmethod
    def _host_dir_absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path on the Docker host")
        return value


SECRETS = frozenset(
    name.upper()
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
)


def describe_errors(error: ValidationError) -> list[str]:
    """One line per invalid variable, named as it is set in the environment (never a secret's
    value)."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # a rule between settings: the message names them
            lines.append(f"invalid settings: {message}")
            continue
        name = str(item["loc"][0]).upper()
        value = item.get("input")
        hidden = isinstance(value, dict) or value is None or name in SECRETS
        shown = "" if hidden else f"={str(value)!r}"
        lines.append(f"invalid setting {name}{shown}: {message}")
    return lines
