"""`python -m app cleanup [--dry-run]`: one cleanup pass by hand (the bot runs it periodically)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.config import Settings
from app.files import CleanupService, StorageUnavailable, create_file_store
from app.files.repository import FileRepository
from app.sandbox import create_runner

EXIT_OK, EXIT_FAILED = 0, 1
LABELS = {
    "expired": "expired files",
    "missing_files": "records whose file was gone",
    "orphan_files": "files without metadata",
    "staging": "leftover run folders",
    "containers": "leftover sandbox containers",
    "packages": "cached packages unused too long or of old images",
}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "cleanup",
        help="remove expired files, orphans, leftover sandbox containers and stale packages",
        description="One cleanup pass: expired files (disk and metadata), metadata whose file "
        "is gone, files without metadata older than an hour, old run folders, leftover sandbox "
        "containers. Safe to run at any time, also while the bot runs.",
    )
    parser.add_argument("--dry-run", action="store_true",
                        help="report what would be removed, remove nothing")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, settings: Settings,
            repository: FileRepository | None = None) -> int:
    return asyncio.run(_cleanup(args, settings, repository))


async def _cleanup(args, settings: Settings, repository: FileRepository | None) -> int:
    runner = create_runner(settings)
    store = None
    try:
        store = await create_file_store(settings, repository)
        service = CleanupService(store, runner, package_cache_days=settings.package_cache_days)
        report = await service.run_once(dry_run=args.dry_run)
    except StorageUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        runner.engine.close()
        if store is not None:
            await store.repository.close()
    if args.json:
        print(json.dumps({**report.counts(), "dry_run": report.dry_run, "notes": report.notes}))
        return EXIT_OK
    verb = "would remove" if report.dry_run else "removed"
    for key, count in report.counts().items():
        print(f"{verb} {count} {LABELS[key]}")
    for note in report.notes:
        print(f"note: {note}")
    return EXIT_OK
