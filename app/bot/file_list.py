"""/files as text: pages of the user's files (never cut off), and the choices of file-id
autocomplete. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

from app.files import StoredFile, scopes
from app.sizes import human_size

PER_PAGE = 10
NAME_CHARS = 60
CHOICES = 25  # Discord shows at most 25 autocomplete choices
CHOICE_CHARS = 100
ALL = "all"


def short_name(name: str, limit: int = NAME_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def file_line(stored: StoredFile, here: str) -> str:
    """One file as its owner sees it from `here` (a scope: where it was shared matters)."""
    expiry = f"<t:{int(stored.expires_at.timestamp())}:R>" if stored.expires_at else "never"
    return (
        f"`{stored.file_id}` {short_name(stored.name)} ({stored.type}, "
        f"{human_size(stored.size)}), {scopes.describe(stored.scope, here)}, expires {expiry}"
    )


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, math.ceil(total / per_page))


def files_page(
    files: Sequence[StoredFile], page: int, here: str = scopes.PRIVATE, per_page: int = PER_PAGE
) -> tuple[str, int, int]:
    """(text, page shown, pages): `page` counts from 1 and is clamped to the pages there are;
    `here` is the scope the list is asked from."""
    if not files:
        return "You have no stored files.", 1, 1
    pages = page_count(len(files), per_page)
    page = min(max(page, 1), pages)
    shown = files[(page - 1) * per_page : page * per_page]
    paged = f", page {page} of {pages}" if pages > 1 else ""
    header = f"Your files ({len(files)}{paged}; write an id in a message to use it elsewhere):"
    lines = [header, *(file_line(f, here) for f in shown)]
    return "\n".join(lines), page, pages


def file_choices(
    files: Sequence[StoredFile], current: str, *, offer_all: bool = False
) -> list[tuple[str, str]]:
    """(label, value) choices for a file_id option: files whose id or name holds `current`."""
    typed = current.strip().lower()
    choices: list[tuple[str, str]] = []
    if offer_all and files and (not typed or ALL.startswith(typed)):
        choices.append((f"All my files ({len(files)})", ALL))
    for stored in files:
        if typed and typed not in stored.file_id.lower() and typed not in stored.name.lower():
            continue
        label = f"{short_name(stored.name, 50)} · {stored.type}, {human_size(stored.size)}"
        choices.append((f"{label} · {stored.file_id}"[:CHOICE_CHARS], stored.file_id))
    return choices[:CHOICES]
