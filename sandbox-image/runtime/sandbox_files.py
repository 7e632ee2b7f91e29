"""The user's files inside the sandbox: `load_file`, `get_file_path`, `list_files`.

The runner makes these three available to the user's code without an import. Files live under the
read-only input folder (INPUT_DIR, /mnt/data); the runner passes their ids, names, types and
categories in, named as in the host's table (app/files/types.py). The reader is chosen by the
file's content first and by that type second (sandbox_readers); how each format is read is in
docs/files-loading.md. A file is referred to by its id or by its name.
"""

from __future__ import annotations

import os
from collections import namedtuple

import sandbox_detect
import sandbox_errors
import sandbox_readers
from sandbox_errors import LoadError, MissingLibraryError, TooLargeToLoadError

INPUT_DIR = os.environ.get("INPUT_DIR", "/mnt/data")
# The readers by the host table's type and category names (tests/unit/test_file_types.py).
_LOADERS_BY_TYPE = sandbox_readers.LOADERS_BY_TYPE
_LOADERS_BY_CATEGORY = sandbox_readers.LOADERS_BY_CATEGORY

__all__ = [
    "LoadError",
    "MissingLibraryError",
    "TooLargeToLoadError",
    "UserFile",
    "configure",
    "get_file_path",
    "list_files",
    "load_file",
]


# A named tuple, not a dataclass: `dataclasses` imports `inspect`, ~8 ms of every cold start.
class UserFile(namedtuple("UserFile", "id name type size path category", defaults=("",))):
    """One file of this run: id, name, type, size, path (read-only), category."""

    __slots__ = ()

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
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) for row in rows
        )

    __repr__ = __str__


_files: list[UserFile] = []


def configure(entries: list[dict], approved: dict[str, str] | None = None) -> None:
    """Called by the runner with the files of this run, and the approved packages (import name
    -> distribution) that are installed when the code imports them, when the host says."""
    sandbox_errors.approved = dict(approved) if approved is not None else None
    _files.clear()
    for entry in entries:
        name = str(entry.get("name") or entry["id"])
        filename = os.path.basename(entry["filename"])
        # A host that sent no type (a file not from the store): the table's, by extension.
        type_name = str(entry.get("type") or "")
        category = str(entry.get("category") or "")
        if not type_name:
            known = sandbox_detect.type_for_name(name) or sandbox_detect.type_for_name(filename)
            type_name = known or _extension(name)[1:] or "unknown"
            category = category or (sandbox_detect.category_of(known) if known else "")
        _files.append(
            UserFile(
                id=str(entry["id"]),
                name=name,
                type=type_name,
                size=int(entry.get("size") or 0),
                path=os.path.join(INPUT_DIR, filename),
                category=category,
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

    The reader is chosen by the file's content first (its signature: an IDL .sav is not an
    SPSS one, a .csv that is gzip is read as the CSV inside), then by its type. Tables (CSV/TSV
    with delimiter and encoding detected, Excel, ODS, Parquet, Feather and Arrow streams, ORC,
    Stata, SAS, SPSS, ARFF) -> pandas.DataFrame; Excel/ODS with all_sheets=True ->
    {sheet: DataFrame}, sheet="name" picks one. JSON, MessagePack -> DataFrame for a list of
    records (as_dataframe=False keeps the object), else the object; JSON Lines -> DataFrame.
    NumPy .npy -> array, .npz -> {name: array} (pickled objects allowed); MATLAB .mat, IDL
    save, NetCDF -> {name: value}; HDF5 -> DataFrame (or {key: DataFrame}) for pandas files,
    else an h5py.File. SAS catalogs -> {format: {value: label}}. pickle/joblib -> the object.
    SQLite -> a read-only sqlite3 connection. YAML/TOML/INI -> dict; XML -> ElementTree root.
    Images (also by content) -> PIL.Image; audio -> (data, sample_rate). Text and code -> str.
    gzip/bz2/xz/zstd/lz4 files -> what they hold, read by its inner name; a zip or tar of one
    file -> that file loaded, of several -> {name: object} (member="name" picks one), too many
    -> the path. Unknown binary data -> bytes. Other options go to the reader. See
    docs/files-loading.md.

    Errors are LoadError (a ValueError) or MissingLibraryError (an ImportError), naming the
    file, the type it was taken for and the fix; a file declaring more than the run's free
    memory is refused before it is read (TooLargeToLoadError, a LoadError).
    """
    return sandbox_readers.load(_resolve(file_id), options)


def _known_files() -> list[UserFile]:
    if _files:
        return list(_files)
    # A subprocess of the user's code has no list from the runner: fall back to the folder, with
    # the extension as the type.
    found = []
    try:
        names = sorted(os.listdir(INPUT_DIR))
    except OSError:
        return []
    for name in names:
        path = os.path.join(INPUT_DIR, name)
        if os.path.isfile(path) and not name.startswith("."):
            stem, ext = os.path.splitext(name)
            type_name = sandbox_detect.type_for_name(name) or ext[1:] or "unknown"
            found.append(
                UserFile(
                    stem,
                    name,
                    type_name,
                    os.path.getsize(path),
                    path,
                    sandbox_detect.category_of(type_name),
                )
            )
    return found


def _resolve(key: str) -> UserFile:
    files = _known_files()
    key = str(key)
    for f in files:
        if f.id == key:
            return f
    matches = [f for f in files if f.name == key] or [
        f for f in files if f.name.lower() == key.lower()
    ]
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
