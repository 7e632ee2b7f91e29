"""`python -m app files add|list|rm`: a user's stored files from the terminal.

These go through the same FileStore and store as the bot: MongoDB with MONGODB_URI, else the
embedded SQLite file under DATA_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from app.files import FileStore, FileStoreError, StorageUnavailable, StoredFile, scopes
from app.files.types import describe_types, is_supported
from app.sizes import human_size
from app.wiring import Components

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def scope_argument(text: str) -> str:
    """`dm` or `guild:<id>`, as argparse checks it."""
    if not scopes.is_valid_scope(text.strip()):
        raise argparse.ArgumentTypeError("expected dm or guild:<server id>")
    return text.strip()


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "files",
        help="add, list or remove a user's stored files",
        description="A user's stored files, in the bot's store (MongoDB with MONGODB_URI, else "
        "the SQLite file under DATA_DIR).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="store local files for a user, as uploads")
    add.add_argument("--user", required=True, help="user id")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument(
        "--scope",
        type=scope_argument,
        default=scopes.PRIVATE,
        help="where the bot may use the files: dm (the user's DMs, the default) or "
        "guild:<server id> (docs/files.md, Scopes)",
    )
    add.add_argument("--json", action="store_true", help="print one JSON object per stored file")
    add.set_defaults(handler=execute, run=_add)

    listing = actions.add_parser("list", help="list a user's files, newest first")
    listing.add_argument("--user", required=True, help="user id")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=execute, run=_list)

    remove = actions.add_parser("rm", help="remove one of a user's files")
    remove.add_argument("--user", required=True, help="user id")
    remove.add_argument("file_id", metavar="FILE_ID")
    remove.set_defaults(handler=execute, run=_remove)

    types = actions.add_parser("types", help="list the supported file types by category")
    types.set_defaults(handler=_print_types)


def execute(args: argparse.Namespace, parts: Components) -> int:
    return asyncio.run(_with_store(args, parts))


async def _with_store(args, parts: Components) -> int:
    try:
        store = await parts.file_store()
    except StorageUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        await parts.close()
        return EXIT_FAILED
    try:
        return await args.run(args, store)
    except StorageUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except FileStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        await parts.close()


async def _add(args, store: FileStore) -> int:
    status = EXIT_OK
    for path in args.paths:
        if not path.is_file():
            print(f"error: cannot add {path}: no such file", file=sys.stderr)
            status = EXIT_FAILED
            continue
        try:
            with path.open("rb") as fh:
                stored = await store.save(args.user, path.name, fh, scope=args.scope)
        except StorageUnavailable:
            raise
        except FileStoreError as exc:
            print(f"error: cannot add {path}: {exc}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        if args.json:
            print(json.dumps(_as_dict(stored), ensure_ascii=False))
        else:
            note = (
                "" if is_supported(path.name) else f" (unknown extension: stored as {stored.type})"
            )
            print(
                f"stored {stored.file_id}  {stored.name}  {stored.type}  "
                f"{human_size(stored.size)}{note}"
            )
    return status


async def _list(args, store: FileStore) -> int:
    files = await store.list(args.user)
    if args.json:
        print(json.dumps([_as_dict(f) for f in files], ensure_ascii=False))
        return EXIT_OK
    if not files:
        print(f"no files stored for user {args.user}")
        return EXIT_OK
    rows = [("id", "name", "type", "size", "source", "scope", "uploaded (UTC)", "expires (UTC)")]
    for f in files:
        rows.append(
            (
                f.file_id,
                f.name,
                f.type,
                human_size(f.size),
                f.source,
                f.scope,
                _when(f.uploaded_at),
                _when(f.expires_at) if f.expires_at else "never",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


async def _remove(args, store: FileStore) -> int:
    if await store.delete(args.user, args.file_id):
        print(f"removed {args.file_id}")
        return EXIT_OK
    print(f"error: user {args.user} has no file {args.file_id}", file=sys.stderr)
    return EXIT_FAILED


def _print_types(args, parts: Components) -> int:
    print(describe_types())
    return EXIT_OK


def _as_dict(stored: StoredFile) -> dict:
    data = asdict(stored)
    del data["user_id"], data["path"]  # the caller knows the user; the path is internal
    data["uploaded_at"] = stored.uploaded_at.isoformat()
    data["expires_at"] = stored.expires_at.isoformat() if stored.expires_at else None
    return data


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
