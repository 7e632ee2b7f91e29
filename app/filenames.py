"""Making untrusted file names safe to show and to write: one rule for uploads and run outputs."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_LENGTH = 120
_UNSAFE_CHARS = re.compile(r'[\\/:*?"<>|@`]')
_SPACES = re.compile(r"\s+")
_DOT_RUNS = re.compile(r"\.{2,}")


def safe_filename(name: str, fallback: str = "file", max_length: int = MAX_NAME_LENGTH) -> str:
    """A single path component that is printable, bounded and never special.

    Unicode NFC first (so look-alike spellings compare equal); then every control, format
    (RLO, zero-width), surrogate, private-use or unassigned character is dropped; path separators,
    full-width ones included (NFKC folds them to ASCII first), and characters that mean something
    to shells or Discord become "_"; leading dots and spaces go, so the result is never hidden,
    "." or "..", and runs of dots become one. Length is capped in characters, keeping the extension.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join(_fold_separator(ch) for ch in text)
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = _UNSAFE_CHARS.sub("_", text)
    text = _DOT_RUNS.sub(".", text)  # no ".." anywhere, not even inside a name
    text = _SPACES.sub(" ", text).strip()
    text = text.lstrip(". ")
    text = text.rstrip(" .")
    if not text or set(text) <= {"_"}:
        text = fallback
    if len(text) > max_length:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            text = stem[: max_length - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            text = text[:max_length].rstrip(" .")
    return text


def _fold_separator(ch: str) -> str:
    # Full-width and other compatibility forms of "/", "\\" and "." (e.g. U+FF0F, U+FF0E, U+2024)
    # fold to ASCII under NFKC; fold only those, so ordinary non-Latin names keep their letters.
    if ch.isascii():
        return ch
    folded = unicodedata.normalize("NFKC", ch)
    return folded if folded in ("/", "\\", ".", "..", ":") else ch


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.ext`, `stem-3.ext`... when already taken (case-insensitive)."""
    lowered = {t.lower() for t in taken}
    if name.lower() not in lowered:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    counter = 2
    while True:
        candidate = f"{stem}-{counter}{dot}{ext}"
        if candidate.lower() not in lowered:
            return candidate
        counter += 1
