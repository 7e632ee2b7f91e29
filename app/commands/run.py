"""`python -m app run`: run code through the same sandbox the bot uses (this process's runner, or
the sandbox service when SANDBOX_SERVICE_URL is set)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from app.chat.run_files import run_inputs, store_outputs
from app.commands.arguments import positive_number
from app.filenames import unique_name
from app.files import FileStore, FileStoreError, StorageUnavailable
from app.sandbox import RunRequest, RunResult
from app.sandbox.sessions import SESSION_RULE, is_session_id
from app.wiring import Components

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "run",
        help="run Python code in a sandbox",
        description="Run Python code in a fresh sandbox container. Exit status: 0 when the code "
        "succeeded, 1 when it failed or timed out, 2 for usage errors.",
    )
    parser.add_argument(
        "code_file",
        nargs="?",
        default="-",
        metavar="CODE_FILE",
        help="file with the code, or - (default) to read it from stdin",
    )
    parser.add_argument(
        "--user",
        default="local",
        help="user id the run belongs to; with MONGODB_URI set, the run sees "
        "that user's stored files and its outputs are stored for the user",
    )
    parser.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="PATH",
        help="store a local file for the user as an upload would, loadable "
        "with load_file(); repeatable",
    )
    parser.add_argument(
        "--timeout",
        type=positive_number("seconds"),
        metavar="S",
        help="seconds for the code (never more than CODE_EXECUTION_TIMEOUT)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where output files go (default: a new outputs-<run id> folder here)",
    )
    parser.add_argument(
        "--session",
        default="",
        metavar="NAME",
        help="keep the code's variables, functions and imports for the next run with the same "
        "NAME (and --user), across separate commands (SESSION_STATE)",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="with --session: forget the session's state before this run",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    try:
        if args.session and not is_session_id(args.session):
            raise UsageError(f"--session: {SESSION_RULE}")
        if args.reset and not args.session:
            raise UsageError("--reset needs --session NAME")
        code = _read_code(args.code_file)
        attachments = [_attachment(Path(p)) for p in args.attach]
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_run(args, parts, code, attachments))


def _read_code(source: str) -> str:
    if source == "-":
        if sys.stdin.isatty():
            raise UsageError("no code given: pass a file, or pipe the code in (CODE_FILE is -)")
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text") from None


def _attachment(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"cannot attach {path}: no such file")
    return path


async def _open_store(parts: Components, staging: Path) -> FileStore:
    """The user's real store (MongoDB, or the SQLite file under DATA_DIR)."""
    store = await parts.file_store(scratch_dir=staging / "store")
    if not store.repository.persistent:
        print(
            "note: file metadata is kept in memory for this run only: "
            "attached files and outputs are not kept for the user",
            file=sys.stderr,
        )
    return store


async def _stage(store: FileStore, user_id: str, attachments: list[Path]):
    """Store the attachments as uploads would be; the run then sees all of the user's files."""
    for path in attachments:
        with path.open("rb") as fh:
            await store.save(user_id, path.name, fh)
    folder, files = await run_inputs(store, user_id)
    return (folder if files else None), files


async def _run(args, parts: Components, code: str, attachments: list[Path]) -> int:
    staging = parts.layout.new_staging_dir()
    sandbox = parts.sandbox
    try:
        try:
            store = await _open_store(parts, staging)
            input_dir, files = await _stage(store, args.user, attachments)
        except FileStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED if isinstance(exc, StorageUnavailable) else EXIT_USAGE
        await parts.reap_leftovers()
        if args.reset:
            await sandbox.reset_session(args.user, args.session)
        result = await sandbox.run(
            RunRequest(
                code=code,
                user_id=args.user,
                output_dir=staging / "output",
                input_dir=input_dir,
                files=files,
                timeout=args.timeout,
                session_id=args.session,
            )
        )
        if store.repository.persistent and result.files:
            try:
                result = await store_outputs(store, args.user, result)
            except StorageUnavailable as exc:
                print(f"warning: output files were not stored for the user: {exc}", file=sys.stderr)
        result = _deliver(result, args.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        await parts.close()
    _report(result, args.json)
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _deliver(result: RunResult, out: Path | None) -> RunResult:
    """Move collected files out of staging into the user's folder, never overwriting."""
    if not result.files:
        return result
    target = (out or Path(f"outputs-{result.run_id}")).resolve()
    target.mkdir(parents=True, exist_ok=True)
    taken = {p.name for p in target.iterdir()}
    moved = []
    for f in result.files:
        name = unique_name(f.name, taken)
        taken.add(name)
        destination = target / name
        shutil.move(str(f.path), destination)
        moved.append(replace(f, name=name, path=destination))
    return replace(result, files=tuple(moved))


def _report(result: RunResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    if result.stdout:
        sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
    if result.stderr:
        sys.stderr.write(result.stderr if result.stderr.endswith("\n") else result.stderr + "\n")
    err = sys.stderr
    line = f"[{result.status.value}]"
    if result.exit_code is not None:
        line += f" exit {result.exit_code}"
    line += f" · exec {result.exec_seconds:.2f} s · setup {result.setup_seconds:.2f} s"
    print(line, file=err)
    if result.installed_packages:
        print(
            f"installed {', '.join(result.installed_packages)} in {result.install_seconds:.2f} s "
            "(not counted in exec)",
            file=err,
        )
    if result.message:
        print(result.message, file=err)
    for stream, truncated in (
        ("stdout", result.stdout_truncated),
        ("stderr", result.stderr_truncated),
    ):
        if truncated:
            print(f"{stream} was cut at {len(getattr(result, stream).encode())} bytes", file=err)
    for note in result.state_notes:
        print(f"session: {note}", file=err)
    for f in result.files:
        print(f"file: {f.path} ({f.size} bytes)", file=err)
    for s in result.skipped:
        print(f"skipped: {s.name}: {s.reason}", file=err)
