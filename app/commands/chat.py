"""`python -m app chat`: a terminal chat through the same ChatService the bot uses."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from app.chat import ChatAnswer, ChatService, CodeRun, TurnEvents, Upload
from app.chat.runs import session_name
from app.filenames import unique_name
from app.files import StorageUnavailable
from app.wiring import Components

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "chat",
        help="chat with the model in the terminal, code runs in the sandbox",
        description="Reads one message per line from stdin (typed or piped), prints each answer, "
        "the code it ran and the paths of the files produced, and exits at end of input. Uses "
        "OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, so any OpenAI-compatible server works.",
    )
    parser.add_argument("--user", default="local", help="user id the conversation belongs to")
    parser.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="PATH",
        help="upload a local file with the first message; repeatable",
    )
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    uploads = []
    for name in args.attach:
        path = Path(name)
        try:
            uploads.append(Upload(filename=path.name, data=path.read_bytes()))
        except OSError as exc:
            print(f"error: cannot attach {name}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    return asyncio.run(_main(args, parts, uploads))


async def _main(args, parts: Components, uploads: list[Upload]) -> int:
    scratch = parts.layout.new_staging_dir("chat-")
    try:
        try:
            store = await parts.file_store(scratch_dir=scratch)
        except StorageUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if not parts.records.persistent:
            print(
                "history and files are kept for this session only",
                file=sys.stderr,
            )
        # Each `chat` is a session of its own: the next one starts with an empty namespace.
        suffix = f"-{uuid.uuid4().hex[:12]}"
        service = parts.chat_service(store, session_suffix=suffix)
        try:
            # Long-lived: reap leftovers and keep a pool, or check that the service answers.
            await parts.sandbox.start()
            save_dir = Path(f"outputs-chat-{uuid.uuid4().hex[:12]}").resolve()
            await chat_session(
                service, args.user, uploads, _stdin_lines(), sys.stdout, sys.stderr, save_dir
            )
        finally:
            await parts.sandbox.reset_session(args.user, session_name("terminal", suffix))
            await service.client.close()
            await parts.close()
        return EXIT_OK
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _stdin_lines():
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\n")


class TerminalProgress(TurnEvents):
    """Says on stderr when code starts, waits for a slot, and ends."""

    def __init__(self, err: TextIO) -> None:
        self.err = err

    def run_started(self, number: int, code: str) -> None:
        print(f"running code (run {number}) ...", file=self.err, flush=True)

    def run_queued(self, position: int) -> None:
        if position:  # 0: the wait is over
            print(f"waiting for a sandbox slot (position {position})", file=self.err, flush=True)

    async def run_finished(self, run: CodeRun) -> None:
        result = run.result
        print(
            f"code finished: {result.status.value} in {result.exec_seconds:.1f} s",
            file=self.err,
            flush=True,
        )


async def chat_session(
    service: ChatService,
    user_id: str,
    uploads: list[Upload],
    lines,
    out: TextIO,
    err: TextIO,
    save_dir: Path,
    channel_id: str = "terminal",
) -> None:
    pending = list(uploads)
    progress = TerminalProgress(err)
    async for line in lines:
        if not line.strip() and not pending:
            continue
        answer = await service.turn(user_id, channel_id, line, pending, progress)
        pending = []
        render_answer(answer, out.write, save_dir)
        out.flush()


def render_answer(answer: ChatAnswer, write: Callable[[str], object], save_dir: Path) -> None:
    """Print the answer; produced files are copied to `save_dir`, never overwriting."""
    for run in answer.runs:
        write(f"--- code ({run.result.status.value}) ---\n{run.code.rstrip()}\n")
        for f in run.files:
            save_dir.mkdir(parents=True, exist_ok=True)
            target = save_dir / unique_name(f.name, {p.name for p in save_dir.iterdir()})
            shutil.copyfile(f.path, target)
            write(f"file: {target} ({f.size} bytes, id {f.file_id})\n")
    for notice in answer.notices:
        write(f"note: {notice}\n")
    if answer.error and answer.text:
        write(answer.text + "\n")
    write((answer.error or answer.text or "(no answer)") + "\n\n")
