"""Where the sandbox service is: `unix:///absolute/path.sock` or `http://host:port`.

One parser for both ends (SANDBOXD_LISTEN for the service, SANDBOX_SERVICE_URL for its clients);
app/config.py checks the form early, this turns it into what aiohttp needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# sun_path holds 108 bytes, the terminating NUL included.
MAX_SOCKET_PATH = 107


class AddressError(ValueError):
    """Not a usable service address; str() names the fix."""


@dataclass(frozen=True)
class ServiceAddress:
    socket_path: Path | None = None
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, url: str) -> ServiceAddress:
        parts = urlsplit(url.strip())
        if parts.scheme == "unix" and not parts.netloc and parts.path.startswith("/"):
            if len(parts.path.encode()) > MAX_SOCKET_PATH:
                raise AddressError(
                    f"the socket path {parts.path} is longer than {MAX_SOCKET_PATH} bytes: "
                    "choose a shorter one (e.g. unix:///run/codeinterp/sandboxd.sock)"
                )
            return cls(socket_path=Path(parts.path))
        if parts.scheme == "http" and parts.hostname and not parts.query and not parts.username:
            try:
                port = parts.port
            except ValueError:
                port = None
            if port and parts.path in ("", "/"):
                return cls(host=parts.hostname, port=port)
        raise AddressError(f"{url!r}: expected unix:///absolute/path.sock or http://host:port")

    @property
    def is_unix(self) -> bool:
        return self.socket_path is not None

    @property
    def base_url(self) -> str:
        """The URL requests are made to (a Unix socket's requests name a placeholder host)."""
        return "http://sandboxd" if self.is_unix else f"http://{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"unix://{self.socket_path}" if self.is_unix else self.base_url
