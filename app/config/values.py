"""How setting values are written: the parsers and checks Settings' validators use. Imports
nothing from app (nor does the rest of app.config)."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, Field

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

# Where the sandbox service listens or is reached: a Unix socket by absolute path, or HTTP on a
# host and port (then always with SANDBOX_SERVICE_TOKEN). app/sandboxd/address.py parses it.
SERVICE_URL = re.compile(r"^(unix:///\S+|http://[A-Za-z0-9._-]+:[0-9]{1,5}/?)$")
MIN_TOKEN_LENGTH = 16


def check_token(token: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or " " in token:
        raise ValueError(
            f"SANDBOX_SERVICE_TOKEN must be at least {MIN_TOKEN_LENGTH} printable characters "
            "without spaces (e.g. the output of `openssl rand -hex 24`)"
        )


DOMAIN = re.compile(
    r"\A(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)
_DISTRIBUTION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def normalize_distribution(name: str) -> str:
    """PEP 503 name: lower case, runs of -, _ and . become one -."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def parse_distribution_names(text: str) -> tuple[str, ...]:
    """`name, name, ...` -> normalized distribution names; ValueError naming a bad one."""
    names = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not _DISTRIBUTION.fullmatch(item):
            raise ValueError(f"not a distribution name: {item!r}")
        names.append(normalize_distribution(item))
    return tuple(names)


def parse_import_names(text: str) -> dict[str, str]:
    """`import=distribution, ...` -> {import: distribution}; ValueError naming a bad pair."""
    mapping = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        module, sep, dist = (s.strip() for s in item.partition("="))
        if not sep or not module.isidentifier() or not _DISTRIBUTION.fullmatch(dist):
            raise ValueError(
                f"expected import=distribution pairs like cv2=opencv-python-headless, got {item!r}"
            )
        mapping[module] = normalize_distribution(dist)
    return mapping


# The uids the image gives its own accounts (sandbox-image/Dockerfile: the keeper and the
# installer); a range of code uids must leave them out.
RESERVED_UIDS = (10002, 10003)


def parse_uid_range(text: str) -> tuple[int, int]:
    """`first-last` -> (first, last); ValueError saying what is wrong."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not match:
        raise ValueError("expected a range of uids like 20000-29999")
    first, last = int(match.group(1)), int(match.group(2))
    if first < 1000 or last > 65535:
        raise ValueError(
            "the uids must be from 1000 to 65535 (below 1000 are the system's; a user-namespace "
            "remap maps 65536)"
        )
    if last - first + 1 < 64:
        raise ValueError("give at least 64 uids: each container (warm ones too) needs its own")
    if any(first <= uid <= last for uid in RESERVED_UIDS):
        raise ValueError(f"the range must leave out {RESERVED_UIDS}, the image's own accounts")
    return first, last


def parse_ids(text: str) -> frozenset[int]:
    """`123, 456 789` -> {123, 456, 789} (Discord snowflakes)."""
    return frozenset(int(part) for part in re.split(r"[,\s]+", text) if part)


def parse_prices(text: str) -> dict[str, tuple[float, float, float | None]]:
    """`model=input/output[/cached], ...` in dollars per million tokens -> {model: prices}."""
    prices: dict[str, tuple[float, float, float | None]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        model, sep, values = (s.strip() for s in item.partition("="))
        numbers = [v.strip() for v in values.split("/")]
        try:
            parsed = [float(v) for v in numbers]
        except ValueError:
            parsed = []
        if not sep or not model or len(parsed) not in (2, 3) or min(parsed) < 0:
            raise ValueError(
                "expected model=input/output[/cached_input] in dollars per million tokens, "
                f"like my-model=0.5/1.5 or gpt-6=2/8/0.2, got {item!r}"
            )
        prices[model] = (parsed[0], parsed[1], parsed[2] if len(parsed) == 3 else None)
    return prices


IdList = Annotated[str, Field(pattern=r"^[\d,\s]*$")]
