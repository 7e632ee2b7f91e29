"""Command line: `python -m app <command>`. Settings are read once here; each verb takes what it
needs from the composition root (app/wiring.py) built on them."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from app.commands import (
    audit,
    bench,
    bot,
    chat,
    cleanup,
    doctor,
    files,
    image,
    packages,
    run,
    sandboxd,
)
from app.config import Settings, describe_errors
from app.logs import configure_logging
from app.wiring import Components

COMMANDS = (bot, sandboxd, chat, run, files, cleanup, doctor, image, packages, bench, audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app", description="Sandboxed code interpreter for Discord."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def load_settings() -> Settings | None:
    try:
        return Settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(line, file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    if settings is None:
        return 2
    configure_logging(settings.log_level or "WARNING", settings.log_format)
    try:
        return args.handler(args, Components(settings))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
