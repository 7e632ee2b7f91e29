"""`python -m app cleanup [--dry-run]`: one cleanup pass by hand (the bot runs it periodically)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.files import StorageUnavailable
from app.wiring import Components

EXIT_OK, EXIT_FAILED = 0, 1
LABELS = {
    "expired": "expired files",
    "missing_files": "records whose file was gone",
    "orphan_files": "files without metadata",
    "staging": "leftover run, staging and tool folders",
    "containers": "leftover sandbox containers",
    "packages": "cached packages unused too long or of old images",
    "sessions": "session states unused for FILE_EXPIRATION_HOURS",
}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "cleanup",
        help="remove expired files, orphans, leftover sandbox containers and stale packages",
        description="One cleanup pass: expired files (disk and metadata), metadata whose file "
        "is gone, files without metadata older than an hour, old run, staging and tool folders, "
        "orphaned warm-pool folders, leftover sandbox containers, stale cached packages. Safe "
        "to run at any time, also while the bot runs.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be removed, remove nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    return asyncio.run(_cleanup(args, parts))


async def _cleanup(args, parts: Components) -> int:
    try:
        store = await parts.file_store()
        report = await parts.cleanup(store).run_once(dry_run=args.dry_run)
        if parts.uses_service:
            report.notes.append(
                "sandbox containers, warm-pool folders and cached packages belong to the sandbox "
                "service (SANDBOX_SERVICE_URL), which cleans them itself"
            )
    except StorageUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await parts.close()
    if args.json:
        print(json.dumps({**report.counts(), "dry_run": report.dry_run, "notes": report.notes}))
        return EXIT_OK
    verb = "would remove" if report.dry_run else "removed"
    for key, count in report.counts().items():
        print(f"{verb} {count} {LABELS[key]}")
    for note in report.notes:
        print(f"note: {note}")
    return EXIT_OK
