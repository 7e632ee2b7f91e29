"""The user's files inside the sandbox: `load_file`, `get_file_path`, `list_files`.

The runner makes these three available to the user's code without an import. Files live under the
read-only input folder (INPUT_DIR, /mnt/data); the runner passes their ids, names and types in.
A file is referred to by its id or by its name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

INPUT_DIR = os.environ.get("INPUT_DIR", "/mnt/data")

TEXT_EXTENSIONS = {
    ".txt", ".md", ".rst", ".log", ".py", ".r", ".sql", ".sh", ".js", ".ts", ".html", ".htm",
    ".css", ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".tex", ".c", ".h",
    ".cpp", ".java", ".go", ".rs", ".rb", ".php", ".csv", ".tsv", ".json", ".jsonl", ".ndjson",
}


@dataclass(frozen=True)
class UserFile:
    id: str
    name: str
    type: str
    size: int
    path: str

    def __repr__(self) -> str:
        return f"UserFile(id={self.id!r}, name={self.name!r}, type={self.type!r}, size={self.size})"


class FileList(list):
    """A list of UserFile that prints as a readable table."""

    def __str__(self) -> str:
        if not self:
            return "No files are available in this run."
        rows = [("id", "name", "type", "size")]
        rows += [(f.id, f.name, f.type, _human_size(f.size)) for f in self]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)

    __repr__ = __str__


_files: list[UserFile] = []


def configure(entries: list[dict]) -> None:
    """Called by the runner with the files of this run."""
    _files.clear()
    for entry in entries:
        _files.append(
            UserFile(
                id=str(entry["id"]),
                name=str(entry.get("name") or entry["id"]),
                type=str(entry.get("type") or _extension(entry.get("name", ""))[1:] or "unknown"),
                size=int(entry.get("size") or 0),
                path=os.path.join(INPUT_DIR, os.path.basename(entry["filename"])),
            )
        )


def list_files() -> FileList:
    """The files available to this run: id, name, type, size."""
    return FileList(_known_files())


def get_file_path(file_id: str) -> str:
    """The read-only path of a file, by id or name."""
    return _resolve(file_id).path


def load_file(file_id: str, **options):
    """Load a file by id or name into the most useful Python object for its type.

    CSV/TSV -> pandas.DataFrame, JSON -> DataFrame when it is a list of records (else the parsed
    object), JSON Lines -> DataFrame, text and code -> str, anything else -> bytes.
    Keyword options are passed to the underlying reader (e.g. sep=";" for CSV).
    """
    entry = _resolve(file_id)
    ext = _extension(entry.name) or _extension(entry.path)
    if ext in (".csv", ".tsv"):
        import pandas as pd

        if ext == ".tsv":
            options.setdefault("sep", "\t")
        else:
            options.setdefault("sep", None)
            options.setdefault("engine", "python")
        return pd.read_csv(entry.path, **options)
    if ext in (".jsonl", ".ndjson"):
        import pandas as pd

        return pd.read_json(entry.path, lines=True, **options)
    if ext == ".json":
        with open(entry.path, encoding="utf-8-sig") as fh:
            data = json.load(fh, **options)
        if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
            import pandas as pd

            return pd.DataFrame(data)
        return data
    if ext in TEXT_EXTENSIONS:
        with open(entry.path, encoding=options.pop("encoding", "utf-8"), errors="replace") as fh:
            return fh.read()
    with open(entry.path, "rb") as fh:
        return fh.read()


def _known_files() -> list[UserFile]:
    if _files:
        return list(_files)
    # A subprocess of the user's code has no list from the runner: fall back to the folder.
    found = []
    try:
        names = sorted(os.listdir(INPUT_DIR))
    except OSError:
        return []
    for name in names:
        path = os.path.join(INPUT_DIR, name)
        if os.path.isfile(path) and not name.startswith("."):
            stem, ext = os.path.splitext(name)
            found.append(UserFile(stem, name, ext[1:] or "unknown", os.path.getsize(path), path))
    return found


def _resolve(key: str) -> UserFile:
    files = _known_files()
    key = str(key)
    for f in files:
        if f.id == key:
            return f
    matches = [f for f in files if f.name == key] or [f for f in files if f.name.lower() == key.lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        ids = ", ".join(f.id for f in matches)
        raise FileNotFoundError(f"several files are named {key!r}; use one of the ids: {ids}")
    if not files:
        raise FileNotFoundError(f"no file {key!r}: no files are available in this run")
    known = ", ".join(f"{f.id} ({f.name})" for f in files)
    raise FileNotFoundError(f"no file {key!r}; available files: {known}")


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
