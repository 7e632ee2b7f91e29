"""Where this process's paths are on the engine's host, when it runs in a container of that
engine (the compose `sandbox` service, a Swarm task): bind sources of sandbox containers are host
paths, so DATA_DIR's host path is read from this container's own mounts."""

from __future__ import annotations

import socket
from pathlib import Path

from app.sandbox.engine import Engine, EngineError, EngineUnavailable

IN_CONTAINER = Path("/.dockerenv")


def in_container() -> bool:
    return IN_CONTAINER.exists()


def mounted_host_path(engine: Engine, path: Path) -> Path | None:
    """When this process runs in a container of `engine`, the host path of `path` (from the
    container's mounts); None elsewhere."""
    if not in_container():
        return None
    try:
        info = engine.inspect(socket.gethostname())
    except (EngineUnavailable, EngineError):
        return None
    target = path.resolve()
    mounts = [
        (Path(m["Destination"]), Path(m["Source"]))
        for m in info.get("Mounts") or []
        if m.get("Destination") and m.get("Source")
    ]
    covering = [(inside, host) for inside, host in mounts if target.is_relative_to(inside)]
    if not covering:
        return None
    inside, host = max(covering, key=lambda pair: len(pair[0].parts))  # the innermost mount
    return host / target.relative_to(inside)
