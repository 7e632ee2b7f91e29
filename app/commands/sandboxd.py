"""`python -m app sandboxd`: the sandbox service, the one process that reaches the Docker engine.

Clients (the bot, `chat`, `run`, `doctor`, `audit`) use it when SANDBOX_SERVICE_URL points at
it. It listens on SANDBOXD_LISTEN, by default a Unix socket in DATA_DIR; `--healthcheck` asks a
running service (for container healthchecks).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from app.logs import configure_logging
from app.sandbox import SandboxUnavailable
from app.sandbox.engine import EngineError, EngineUnavailable
from app.sandbox.leftovers import owner_token
from app.sandbox.starter import IMAGE_BUILD_HINT
from app.sandboxd import AddressError, ServeError
from app.wiring import Components

log = structlog.get_logger(__name__)


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "sandboxd",
        help="serve the sandbox to other processes (the only one with Docker access)",
        description="Run the sandbox side (runner, warm pool, package installs, reaping) behind "
        "a narrow API on SANDBOXD_LISTEN (default: a Unix socket in DATA_DIR; http://host:port "
        "only with SANDBOX_SERVICE_TOKEN). Other processes use it with SANDBOX_SERVICE_URL.",
    )
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 when the service at SANDBOXD_LISTEN answers and its engine works",
    )
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    try:
        address = parts.service_address()
    except AddressError as exc:
        print(f"cannot start: SANDBOXD_LISTEN: {exc}", file=sys.stderr)
        return 2
    if args.healthcheck:
        return asyncio.run(_healthcheck(parts))
    configure_logging(parts.settings.log_level or "INFO", parts.settings.log_format)
    service = Components(parts.settings, owner=owner_token(service=True))
    print(f"sandboxd: listening on {address}", file=sys.stderr, flush=True)
    return asyncio.run(_serve(service))


async def _healthcheck(parts: Components) -> int:
    client = parts.sandbox_client(parts.service_address())
    try:
        await client.health()
    except SandboxUnavailable as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0


async def _serve(parts: Components) -> int:
    problem = await _engine_problem(parts)
    if problem:
        print(f"cannot start: {problem}", file=sys.stderr)
        await parts.close()
        return 2
    server = parts.sandbox_server()
    try:
        await server.start()
    except ServeError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        await server.close()
        await parts.close()
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("sandbox service stopping")
    finally:
        await server.close()  # runs in flight end, their containers and the warm pool go
        await parts.close()
    return 0


async def _engine_problem(parts: Components) -> str:
    """Why the service cannot work at all (no engine, no image), as one line; "" when it can."""
    engine = parts.docker
    settings = parts.settings
    try:
        await engine.call(engine.ping)
        labels = await engine.call(engine.image_labels, settings.sandbox_image)
    except (EngineUnavailable, EngineError) as exc:
        return f"Docker: {str(exc)[:300]}"
    if labels is None:
        image = settings.sandbox_image
        return f"sandbox image {image} not found: build it with `{IMAGE_BUILD_HINT}`"
    return ""
