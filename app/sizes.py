"""Sizes as people read them: the one formatter the store, the bot and the CLI share."""

from __future__ import annotations


def human_size(size: float) -> str:
    """`512 bytes`, `1.5 KB`, `50.0 MB`, `2.0 GB` (binary units, as the limits are set)."""
    if size < 1024:
        return f"{size:.0f} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"
