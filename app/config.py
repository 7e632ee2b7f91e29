"""Settings: read once from the environment and `.env` in `main()`, then passed down.

Every variable is listed in `.env.example` with its default and meaning. Invalid values stop the
program at start with one readable line per variable (see `describe_errors`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: object) -> int:
    """Bytes from an int or a string like 512m, 1g, 1.5GiB, 65536."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 512m or 1g")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError(f"expected a size like 512m or 1g, got {value!r}")
        size = math.floor(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError("must be larger than 0")
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size)]


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
    sandbox_warm_pool_size: int = Field(2, ge=0, le=64)
    sandbox_warm_pool_max_age: float = Field(600.0, gt=0, le=86400)

    # Image build
    sandbox_base_image: str = Field("python:3.11-slim-bookworm", min_length=1)
    sandbox_pip_index_url: str = ""
    sandbox_pip_extra_index_url: str = ""

    # Storage
    data_dir: Path = Path("data")
    host_data_dir: Path | None = None

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    log_format: Literal["auto", "console", "json"] = "auto"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) and value else value or None

    @field_validator("host_data_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("host_data_dir")
    @classmethod
    def _host_dir_absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path on the Docker host")
        return value


def describe_errors(error: ValidationError) -> list[str]:
    """One line per invalid variable, named as it is set in the environment."""
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "configuration"
        value = item.get("input")
        shown = "" if isinstance(value, dict) or value is None else f"={str(value)!r}"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"invalid setting {name}{shown}: {message}")
    return lines
