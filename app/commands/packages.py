"""`python -m app packages list|cleanup|approved`: the auto-install package cache, for admins."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from app.commands.arguments import positive_number
from app.wiring import Components, package_catalog


def add_parser(sub) -> None:
    parser = sub.add_parser("packages", help="the approved-package cache (list, clean up)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="list cached packages",
        description="List the packages installed into the "
        "package cache, per image; `current` marks the cache of the configured image.",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(handler=execute_list)
    cleanup = actions.add_parser(
        "cleanup",
        help="remove unused cached packages",
        description="Remove cached packages unused for PACKAGE_CACHE_DAYS days (or --days), the "
        "caches of images other than the configured one, and leftovers of crashed installs.",
    )
    cleanup.add_argument(
        "--days",
        type=positive_number("days"),
        metavar="N",
        help="remove packages unused for N days (default: PACKAGE_CACHE_DAYS)",
    )
    cleanup.add_argument("--json", action="store_true", help="print one JSON object")
    cleanup.set_defaults(handler=execute_cleanup)
    approved = actions.add_parser("approved", help="print the approved packages by need")
    approved.set_defaults(handler=execute_approved)


def _with_installer(parts: Components, work):
    async def main():
        try:
            return await work(parts.installer)
        finally:
            await parts.close()

    return asyncio.run(main())


def execute_list(args: argparse.Namespace, parts: Components) -> int:
    async def work(installer):
        return await installer.current_image_key(), installer.cache.entries()

    current, entries = _with_installer(parts, work)
    rows = [
        {
            "distribution": e.distribution,
            "version": e.version,
            "size": e.size,
            "last_used": round(e.last_used),
            "image": e.image_key,
            "current": e.image_key == current,
            "packages": list(e.packages),
        }
        for e in entries
    ]
    if args.json:
        print(json.dumps({"current_image": current, "packages": rows}))
        return 0
    if not rows:
        print(f"no cached packages in {parts.layout.packages}")
        return 0
    for row in rows:
        days = (time.time() - row["last_used"]) / 86400
        image = f"{row['image']} (current)" if row["current"] else f"{row['image']} (old image)"
        print(
            f"{row['distribution']}=={row['version']}  {row['size'] / 1024**2:.1f} MiB  "
            f"last used {days:.1f} days ago  image {image}"
        )
    return 0


def execute_cleanup(args: argparse.Namespace, parts: Components) -> int:
    days = args.days or parts.settings.package_cache_days

    async def work(installer):
        return await installer.cleanup(days)

    report = _with_installer(parts, work)
    if args.json:
        print(
            json.dumps(
                {
                    "removed_packages": report.removed_entries,
                    "removed_image_caches": report.removed_images,
                    "removed_unfinished_installs": report.removed_work,
                    "kept_packages": report.kept_entries,
                    "freed_bytes": report.freed_bytes,
                    "note": report.note,
                }
            )
        )
        return 0
    for entry in report.removed_entries:
        print(f"removed {entry} (unused for more than {days:g} days)")
    for image in report.removed_images:
        print(f"removed the cache of old image {image}")
    if report.removed_work:
        print(f"removed {report.removed_work} unfinished install folder(s)")
    print(f"freed {report.freed_bytes / 1024**2:.1f} MiB; kept {report.kept_entries} package(s)")
    if report.note:
        print(f"note: {report.note}", file=sys.stderr)
    return 0


def execute_approved(args: argparse.Namespace, parts: Components) -> int:
    catalog = package_catalog(parts.settings)
    for need in catalog.needs():
        print(f"{need}: {', '.join(catalog.for_need(need))}")
    return 0
