"""Start-up checks: what the bot needs, one readable line per problem (never a traceback)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import structlog

from app.chat.records import ChatRecords
from app.config import Settings
from app.layout import DataLayout
from app.sandbox import SandboxUnavailable
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError, EngineUnavailable
from app.sandbox.starter import IMAGE_BUILD_HINT
from app.sandboxd import SandboxClient, ServiceRefused

log = structlog.get_logger(__name__)


async def startup_problems(
    settings: Settings,
    engine: DockerEngine | None,
    records: ChatRecords,
    service: SandboxClient | None = None,
) -> list[str]:
    """The Docker engine and the image are checked when the bot runs the sandbox itself; with a
    sandbox service, that the service accepts the bot. An engine or service that is down is no
    reason not to chat: runs say the sandbox is unavailable until it answers (a Docker socket
    this uid may not use is a problem: it does not end by itself)."""
    problems = []
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        problems.append(
            "DISCORD_TOKEN is not set: put the bot token from the Discord developer portal in .env"
        )
    if not settings.openai_api_key.get_secret_value() and not settings.openai_base_url:
        problems.append("OPENAI_API_KEY is not set (or set OPENAI_BASE_URL to a local server)")
    data_dir = data_dir_problem(settings)
    if data_dir:
        problems.append(data_dir)
    mongodb = settings.mongodb_uri is not None
    if mongodb or not data_dir:  # the SQLite file lives in DATA_DIR: one problem is enough
        try:
            await records.ping()
        except Exception as exc:  # any driver fault is one line; the URI is never printed
            problems.append(
                f"MongoDB: {exc}; check MONGODB_URI and that MongoDB is running"
                if mongodb
                else f"the embedded database: {exc}"
            )
    if service is not None:
        try:
            await service.health()
        except ServiceRefused as exc:
            problems.append(f"sandbox service: {exc}")
        except SandboxUnavailable as exc:
            log.warning("sandbox service unavailable at start", error=str(exc))
        return problems
    assert engine is not None, "without a sandbox service the bot needs the engine"
    try:
        await engine.call(engine.ping)
    except EngineUnavailable as exc:
        denied = socket_denied()
        if denied:  # a setting to fix, not an outage that ends by itself
            problems.append(f"Docker: {denied}")
        else:  # an engine that is not up yet is an outage: chat on, runs say it is unavailable
            log.warning("Docker engine unavailable at start; runs wait for it", error=str(exc))
        return problems
    try:
        labels = await engine.call(engine.image_labels, settings.sandbox_image)
    except (EngineError, EngineUnavailable) as exc:
        problems.append(f"Docker: cannot inspect the sandbox image: {str(exc)[:200]}")
        return problems
    if labels is None:
        problems.append(
            f"sandbox image {settings.sandbox_image} not found: build it with `{IMAGE_BUILD_HINT}`"
        )
    return problems


def socket_denied() -> str:
    """Why this uid cannot use the engine's Unix socket although it exists; empty otherwise."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not where.startswith("unix://"):
        return ""
    path = Path(where.removeprefix("unix://"))
    if not path.exists() or os.access(path, os.R_OK | os.W_OK):
        return ""
    return (
        f"the Docker socket {path} is not readable and writable by uid {os.getuid()}: add the "
        "user to the socket's group (usually `docker`) or run the bot as a user who has it"
    )


def data_dir_problem(settings: Settings) -> str:
    """Why the bot's uid cannot write DATA_DIR (or a folder in it), with the command that fixes
    it; empty when it can. A folder made by root on an earlier run is the usual cause."""
    layout = DataLayout(settings.data_dir)
    uid, gid = os.getuid(), os.getgid()
    host_path = settings.host_data_dir or settings.data_dir.resolve()
    fix = (
        f"run `sudo chown -R {uid}:{gid} {host_path}` on the host (the bot runs as uid {uid}), "
        "or set DATA_DIR to a folder it owns"
    )
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"DATA_DIR {layout.root} cannot be created ({exc.strerror}): {fix}"
    folders = [layout.root] + [p for p in layout.owned_folders() if p.is_dir()]
    for folder in folders:
        if not _writable(folder):
            return f"DATA_DIR folder {folder} is not writable by uid {uid}: {fix}"
    database = layout.database
    if database.exists() and not os.access(database, os.R_OK | os.W_OK):
        return f"the database file {database} is not writable by uid {uid}: {fix}"
    return ""


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            return True
    except OSError:
        return False
