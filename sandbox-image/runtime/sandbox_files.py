"""The user's files inside the sandbox: `load_file`, `get_file_path`, `list_files`.

The runner makes these three available to the user's code without an import. Files live under the
read-only input folder (INPUT_DIR, /mnt/data); the runner passes their ids, names, types and
categories in. Type and category names come from the host's table (app/files/types.py), so the
reader is picked by what the store detected, not guessed again here. A file is referred to by
its id or by its name.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections import namedtuple

INPUT_DIR = os.environ.get("INPUT_DIR", "/mnt/data")
SNIFF_BYTES = 64 * 1024


class MissingLibraryError(ModuleNotFoundError):
    """A reader needs a Python package that is not installed in this sandbox."""


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
                category=str(entry.get("category") or ""),
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

    Tables (CSV/TSV with delimiter and encoding sniffed, Excel, ODS, Parquet, Feather, ORC,
    Stata, SAS, SPSS) -> pandas.DataFrame; Excel/ODS with all_sheets=True -> {sheet: DataFrame},
    sheet="name" picks one. JSON -> DataFrame for a list of records, else the parsed object
    (as_dataframe=False keeps the object); JSON Lines -> DataFrame. NumPy .npy -> array, .npz ->
    {name: array}; MATLAB .mat -> dict (v7.3 files: an h5py.File); HDF5 -> DataFrame (or
    {key: DataFrame}) for pandas files, else an h5py.File. pickle/joblib -> the object. SQLite ->
    a read-only sqlite3 connection. YAML/TOML/INI -> dict; XML -> ElementTree root element.
    Images -> PIL.Image; audio -> (data, sample_rate). Text and code -> str. Archives -> the
    path, and unknown binary data -> bytes (with a note). Other options go to the reader.
    """
    entry = _resolve(file_id)
    loader = _LOADERS_BY_TYPE.get(entry.type) or _LOADERS_BY_CATEGORY.get(entry.category)
    if loader is None:
        loader = _load_text if _looks_like_text(entry.path) else _load_bytes
    return loader(entry, options)


# Readers, by the type and category names of the host's table.


def _load_delimited(entry: UserFile, options: dict):
    pd = _require("pandas", "pandas", entry)
    encoding = options.pop("encoding", None) or _sniff_encoding(entry.path)
    if "sep" not in options and "delimiter" not in options:
        default = {"tsv": "\t", "psv": "|"}.get(entry.type, ",")
        options["sep"] = _sniff_delimiter(entry.path, encoding, default)
    return pd.read_csv(entry.path, encoding=encoding, **options)


def _load_fixed_width(entry: UserFile, options: dict):
    pd = _require("pandas", "pandas", entry)
    options.setdefault("encoding", _sniff_encoding(entry.path))
    return pd.read_fwf(entry.path, **options)


def _load_spreadsheet(entry: UserFile, options: dict):
    pd = _require("pandas", "pandas", entry)
    engine = {"xls": ("xlrd", "xlrd"), "ods": ("odf", "odfpy"), "fods": ("odf", "odfpy"),
              "xlsb": ("pyxlsb", "pyxlsb")}.get(entry.type, ("openpyxl", "openpyxl"))
    _require(engine[0], engine[1], entry)
    if options.pop("all_sheets", False):
        options["sheet_name"] = None
    elif "sheet" in options:
        options["sheet_name"] = options.pop("sheet")
    options.setdefault("engine", engine[0])
    return pd.read_excel(entry.path, **options)


def _load_json(entry: UserFile, options: dict):
    as_dataframe = options.pop("as_dataframe", True)
    with open(entry.path, encoding=options.pop("encoding", "utf-8-sig")) as fh:
        data = json.load(fh, **options)
    if as_dataframe and isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        pd = _require("pandas", "pandas", entry)
        return pd.DataFrame(data)
    return data


def _load_json_lines(entry: UserFile, options: dict):
    pd = _require("pandas", "pandas", entry)
    options.setdefault("encoding", "utf-8-sig")
    return pd.read_json(entry.path, lines=True, **options)


def _load_yaml(entry: UserFile, options: dict):
    yaml = _require("yaml", "pyyaml", entry)
    with open(entry.path, encoding=_sniff_encoding(entry.path)) as fh:
        documents = list(yaml.safe_load_all(fh))
    return documents[0] if len(documents) == 1 else documents


def _load_toml(entry: UserFile, options: dict):
    import tomllib

    with open(entry.path, "rb") as fh:
        return tomllib.load(fh, **options)


def _load_xml(entry: UserFile, options: dict):
    if options.pop("as_dataframe", False):
        pd = _require("pandas", "pandas", entry)
        _require("lxml", "lxml", entry)
        return pd.read_xml(entry.path, **options)
    import xml.etree.ElementTree as ElementTree

    return ElementTree.parse(entry.path).getroot()


def _load_ini(entry: UserFile, options: dict):
    import configparser

    parser = configparser.ConfigParser(interpolation=None, **options)
    with open(entry.path, encoding=_sniff_encoding(entry.path)) as fh:
        text = fh.read()
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        parser.read_string("[DEFAULT]\n" + text)  # .properties and section-less .cfg files
    return {name: dict(parser[name]) for name in parser if name != "DEFAULT" or parser[name]}


_PANDAS_READERS = {
    "parquet": ("read_parquet", "pyarrow"),
    "feather": ("read_feather", "pyarrow"),
    "orc": ("read_orc", "pyarrow"),
    "stata": ("read_stata", None),
    "sas": ("read_sas", None),
    "xport": ("read_sas", None),
    "spss": ("read_spss", "pyreadstat"),
}


def _load_with_pandas(entry: UserFile, options: dict):
    pd = _require("pandas", "pandas", entry)
    reader, needs = _PANDAS_READERS[entry.type]
    if needs:
        _require(needs, needs, entry)
    if entry.type in ("sas", "xport"):
        options.setdefault("format", "xport" if entry.type == "xport" else "sas7bdat")
    try:
        return getattr(pd, reader)(entry.path, **options)
    except ValueError:
        if entry.type != "xport":
            raise
    # pandas reads XPORT version 5 only; pyreadstat reads version 8 too.
    pyreadstat = _require("pyreadstat", "pyreadstat", entry)
    options.pop("format", None)
    frame, _meta = pyreadstat.read_xport(entry.path, **options)
    return frame


def _load_spss_portable(entry: UserFile, options: dict):
    pyreadstat = _require("pyreadstat", "pyreadstat", entry)
    frame, _meta = pyreadstat.read_por(entry.path, **options)
    return frame


def _load_numpy(entry: UserFile, options: dict):
    np = _require("numpy", "numpy", entry)
    loaded = np.load(entry.path, **options)
    if entry.type == "npz":
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    return loaded


def _load_matlab(entry: UserFile, options: dict):
    scipy_io = _require("scipy.io", "scipy", entry)
    try:
        data = scipy_io.loadmat(entry.path, **options)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        h5py = _require("h5py", "h5py", entry)
        _note(f"{entry.name} is a MATLAB v7.3 (HDF5) file: returning an h5py.File")
        return h5py.File(entry.path, "r")
    return {key: value for key, value in data.items() if not key.startswith("__")}


def _load_hdf5(entry: UserFile, options: dict):
    pd = _require("pandas", "pandas", entry)
    if "key" in options:
        return pd.read_hdf(entry.path, **options)
    keys: list = []
    try:
        _require("tables", "tables", entry)
        with pd.HDFStore(entry.path, mode="r") as store:
            keys = store.keys()
            frames = {key: store[key] for key in keys}
    except (ValueError, TypeError, KeyError, OSError, AttributeError):
        keys = []
    if keys:
        return frames[keys[0]] if len(keys) == 1 else frames
    h5py = _require("h5py", "h5py", entry)
    return h5py.File(entry.path, "r")


def _load_pickle(entry: UserFile, options: dict):
    import pickle

    with open(entry.path, "rb") as fh:
        return pickle.load(fh, **options)


def _load_joblib(entry: UserFile, options: dict):
    joblib = _require("joblib", "joblib", entry)
    return joblib.load(entry.path, **options)


def _load_sqlite(entry: UserFile, options: dict):
    import sqlite3
    from urllib.parse import quote

    # The input folder is read-only: immutable=1 stops SQLite from trying to lock or journal.
    return sqlite3.connect(f"file:{quote(entry.path)}?mode=ro&immutable=1", uri=True, **options)


def _load_image(entry: UserFile, options: dict):
    image_module = _require("PIL.Image", "pillow", entry)
    try:
        image = image_module.open(entry.path, **options)
        image.load()
    except image_module.UnidentifiedImageError:
        package = {"heic": "pillow-heif", "avif": "pillow-avif-plugin", "raw_photo": "rawpy",
                   "exr": "OpenEXR"}.get(entry.type)
        if package:
            raise _missing(package, entry) from None
        raise ValueError(f"{entry.name} is not an image Pillow can read") from None
    return image


def _load_audio(entry: UserFile, options: dict):
    soundfile = _require("soundfile", "soundfile", entry)
    try:
        data, rate = soundfile.read(entry.path, **options)
    except RuntimeError as exc:  # soundfile's "format not recognised"
        if entry.type in ("m4a", "wma", "midi"):
            raise _missing("audioread (with ffmpeg) or pydub", entry) from None
        raise ValueError(f"{entry.name} could not be read as audio: {exc}") from None
    return data, rate


def _load_text(entry: UserFile, options: dict):
    encoding = options.pop("encoding", None) or _sniff_encoding(entry.path)
    with open(entry.path, encoding=encoding, errors=options.pop("errors", "replace")) as fh:
        return fh.read()


def _load_archive(entry: UserFile, options: dict):
    _note(f"{entry.name} is an archive ({entry.type}): returning its path; open it with zipfile, "
          "tarfile, gzip... (the input folder is read-only: extract to /tmp or the working folder)")
    return entry.path


def _load_bytes(entry: UserFile, options: dict):
    _note(f"{entry.name} has no reader for type {entry.type!r}: returning its bytes "
          f"(get_file_path({entry.id!r}) gives its path)")
    with open(entry.path, "rb") as fh:
        return fh.read()


def _needs(package: str):
    """A reader for formats whose library is not in the image: a clear message naming it."""

    def load(entry: UserFile, options: dict):
        raise _missing(package, entry)

    return load


_LOADERS_BY_TYPE = {
    "csv": _load_delimited,
    "tsv": _load_delimited,
    "psv": _load_delimited,
    "dsv": _load_delimited,
    "fwf": _load_fixed_width,
    "xlsx": _load_spreadsheet,
    "xlsm": _load_spreadsheet,
    "xltx": _load_spreadsheet,
    "xls": _load_spreadsheet,
    "xlsb": _load_spreadsheet,
    "ods": _load_spreadsheet,
    "fods": _load_spreadsheet,
    "json": _load_json,
    "geojson": _load_json,
    "topojson": _load_json,
    "ipynb": _load_json,
    "jsonl": _load_json_lines,
    "yaml": _load_yaml,
    "toml": _load_toml,
    "xml": _load_xml,
    "kml": _load_xml,
    "gpx": _load_xml,
    "gml": _load_xml,
    "ini": _load_ini,
    "parquet": _load_with_pandas,
    "feather": _load_with_pandas,
    "orc": _load_with_pandas,
    "stata": _load_with_pandas,
    "sas": _load_with_pandas,
    "xport": _load_with_pandas,
    "spss": _load_with_pandas,
    "spss_portable": _load_spss_portable,
    "npy": _load_numpy,
    "npz": _load_numpy,
    "mat": _load_matlab,
    "hdf5": _load_hdf5,
    "pickle": _load_pickle,
    "joblib": _load_joblib,
    "sqlite": _load_sqlite,
    "gpkg": _load_sqlite,
    "svg": _load_text,
    "rtf": _load_text,
    "eml": _load_text,
    "numbers": _needs("numbers-parser"),
    "dbf": _needs("dbfread"),
    "json5": _needs("json5"),
    "msgpack": _needs("msgpack"),
    "bson": _needs("pymongo (bson)"),
    "avro": _needs("fastavro"),
    "cbor": _needs("cbor2"),
    "rdata": _needs("pyreadr"),
    "rds": _needs("pyreadr"),
    "netcdf": _needs("xarray (with netCDF4)"),
    "fits": _needs("astropy"),
    "safetensors": _needs("safetensors"),
    "pt": _needs("torch"),
    "onnx": _needs("onnx"),
    "dill": _needs("dill"),
    "duckdb": _needs("duckdb"),
    "pdf": _needs("pypdf"),
    "docx": _needs("python-docx"),
    "pptx": _needs("python-pptx"),
    "odt": _needs("odfpy text reader (odf.opendocument)"),
    "epub": _needs("ebooklib"),
    "shapefile": _needs("geopandas"),
    "geotiff": _needs("rasterio"),
    "las": _needs("laspy"),
}
_LOADERS_BY_CATEGORY = {
    "image": _load_image,
    "audio": _load_audio,
    "video": _needs("imageio[ffmpeg] or opencv-python"),
    "text": _load_text,
    "code": _load_text,
    "archive": _load_archive,
    "binary": _load_bytes,
}


# Helpers for the readers


def _require(module: str, package: str, entry: UserFile):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise _missing(package, entry) from None


def _missing(package: str, entry: UserFile) -> MissingLibraryError:
    return MissingLibraryError(
        f"load_file({entry.name!r}): reading {entry.type} files needs the Python package "
        f"{package}, which is not installed in this sandbox. get_file_path({entry.id!r}) gives "
        "the file's path to read it another way."
    )


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def _sniff_encoding(path: str) -> str:
    with open(path, "rb") as fh:
        sample = fh.read(SNIFF_BYTES)
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and len(sample) == SNIFF_BYTES:
            return "utf-8"  # a character cut by the sample's end
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _sniff_delimiter(path: str, encoding: str, default: str) -> str:
    import csv

    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        sample = fh.read(SNIFF_BYTES)
    lines = sample.splitlines()
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        sample = "\n".join(lines[:-1])  # drop a line cut by the sample's end
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def _looks_like_text(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            sample = fh.read(4096)
    except OSError:
        return False
    return b"\x00" not in sample


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
