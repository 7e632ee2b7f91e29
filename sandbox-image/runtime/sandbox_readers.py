"""The readers behind load_file, and how one is chosen: by content first, then by name.

A file's first bytes decide where they declare a format (an IDL .sav is not an SPSS .sav, a
.csv that is gzip is read as the CSV inside it); the type the host found from the name decides
otherwise; unknown binaries are tried with the readers that recognise content (Pillow) before
they come back as bytes. Every failure is a LoadError or MissingLibraryError naming the file,
the type it was taken for and the fix (sandbox_errors), and what declares more than the run's
free memory is refused before it is read.
"""

from __future__ import annotations

import io
import json
import os

import sandbox_columnar as columnar
import sandbox_detect as detect
import sandbox_rowformats as rowformats
from sandbox_archives import MAX_MEMBERS, Source, TooLarge, decompressed, human, members, zip_kind
from sandbox_errors import (
    LoadError,
    MissingLibraryError,
    TooLargeToLoadError,
    failed,
    guard,
    missing,
    note,
    require,
    too_large,
)

MAX_DEPTH = 3  # a member of a compressed member of an archive, and no deeper
_SAMPLE = 65536
_GENERIC = frozenset({None, "", "binary", "text", "unknown"})
# Signature found -> the types whose files legitimately carry it.
_CARRIERS = {
    "zip": frozenset({"xlsx", "xlsm", "xltx", "xlsb", "ods", "numbers", "docx", "odt", "pptx",
                      "odp", "epub", "pages", "jar", "whl", "kmz", "npz", "zarr", "joblib",
                      "pt", "mat", "zip"}),
    "hdf5": frozenset({"mat", "netcdf"}),
    "netcdf3": frozenset({"netcdf"}),
    "netcdf_cdf5": frozenset({"netcdf"}),
    "nasa_cdf": frozenset({"netcdf"}),
    "gzip": frozenset({"tar", "joblib", "rds", "rdata"}),
    "bzip2": frozenset({"tar", "joblib", "rds", "rdata"}),
    "xz": frozenset({"tar", "joblib", "rds", "rdata"}),
    "zstd": frozenset({"joblib"}),
    "lz4": frozenset({"joblib"}),
    "tiff": frozenset({"geotiff", "raw_photo"}),
    "sqlite": frozenset({"gpkg"}),
    "pickle": frozenset({"joblib", "dill", "pt"}),
    "feather": frozenset({"arrow_stream"}),
    "arrow_stream": frozenset({"feather"}),
    "mp4": frozenset({"mov", "m4a", "3gp", "heic", "avif", "jp2"}),
    "mov": frozenset({"mp4"}),
    "heic": frozenset({"avif"}),
    "mkv": frozenset({"webm"}),
    "wav": frozenset({"w64"}),
    "ole2": frozenset({"xls", "doc", "ppt", "msg", "mdb"}),
    "xlsx": frozenset({"xlsm", "xltx"}),
}
# Signatures short or textual enough to start an ordinary text file.
_WEAK_SIGNATURES = frozenset({"mp3", "bmp", "rtf", "fits", "midi", "xpm", "stata", "au",
                              "form", "caf"})
_TEXT_CATEGORIES = frozenset({"tabular", "structured", "text", "code", "geospatial"})
_OFFICE_ZIPS = frozenset({"xlsx", "xlsm", "xltx", "xlsb", "ods", "docx", "odt", "pptx", "odp"})
_SPREADSHEETS = frozenset({"xlsx", "xlsm", "xltx", "xls", "xlsb", "ods", "fods"})


def load(entry, options: dict):
    if not os.path.isfile(entry.path):
        # The input mount, not the file's format: say so (python -m app doctor looks for this).
        raise FileNotFoundError(f"load_file({entry.name!r}): {entry.path} is not in the input "
                                "folder: the sandbox cannot see the user's files")
    source = Source(entry, entry.name, entry.type or None, path=entry.path,
                    size=entry.size or None)
    return read(source, options)


def read(source: Source, options: dict):
    """Choose the reader for a source and run it; every failure becomes a clear error."""
    if source.depth > MAX_DEPTH:
        raise LoadError(f"load_file({source.label}): {source.name!r} is nested too deeply in "
                        f"archives to unpack here. get_file_path({source.entry.id!r}) gives the "
                        "outer file's path.")
    try:
        source.type = _choose(source)
        reader = (LOADERS_BY_TYPE.get(source.type) or _CONTENT_LOADERS.get(source.type)
                  or LOADERS_BY_CATEGORY.get(detect.category_of(source.type)) or _load_bytes)
        return reader(source, options)
    except (LoadError, MissingLibraryError):
        raise
    except TooLarge as exc:
        raise too_large(source, str(exc), _IN_PARTS) from None
    except MemoryError:
        raise too_large(source, "it did not fit in memory", _IN_PARTS) from None
    except UnicodeDecodeError as exc:
        raise _undecodable(source, exc) from None
    except Exception as exc:  # noqa: BLE001 - any reader's failure, said plainly
        raise failed(source, exc, _fix(source)) from None
    finally:
        source.cleanup()


def _choose(source: Source) -> str:
    """The type to read a source as: what its bytes declare, else what its name says; for data
    no type claims, what its text looks like (a table, JSON, ARFF...)."""
    given = source.given or detect.type_for_name(source.name)
    head = source.head()
    found = detect.sniff(head, source.tail(), source.size or 0)
    if found == "zip":
        found = zip_kind(source.path())
        if found == "zip" and given in _CARRIERS["zip"] and given not in _OFFICE_ZIPS:
            return given  # jar, whl, npz... are zip archives with a layout of their own
    if found is not None:
        if found == given or given in _CARRIERS.get(found, ()):
            return given
        if found in _WEAK_SIGNATURES and detect.category_of(given) in _TEXT_CATEGORIES \
                and detect.looks_like_text(head):
            return given  # "ID3,..." or "BM..." at the start of a CSV is just text
        if given not in _GENERIC:
            note(f"{source.label}: its bytes say {detect.describe(found)} ({found}), not "
                 f"{detect.describe(given)} ({given}) as its name does: reading it as {found}")
        source.by_content = True
        return found
    by_name = detect.type_for_name(source.name)
    if given in _GENERIC or (given == "text" and by_name is None):
        if not detect.looks_like_text(head):
            return "binary"
        kind = detect.sniff_text(_head_text(head))
        if kind is None:
            return "text"
        source.by_content = True
        return kind
    if (given == "text" and by_name in _SPREADSHEETS or given in _SPREADSHEETS - {"fods"}) \
            and detect.looks_like_text(head):
        kind = detect.sniff_text(_head_text(head))  # "Excel" exports that are HTML or CSV
        if kind in ("html", "csv", "tsv"):
            source.by_content = True
            note(f"{source.label} is {'an HTML table' if kind == 'html' else 'delimited text'}, "
                 f"not a binary spreadsheet: reading it as {kind}")
            return "html_table" if kind == "html" else kind
    return given


def _head_text(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", "replace")
    encoding = detect._utf16_without_bom(head)
    return head.decode(encoding or "utf-8", "replace")


# Text


def _encoding(source: Source, options: dict) -> tuple[str, str]:
    """The encoding to read text with: the caller's, else detected over the whole file (the
    note on stderr says which, when not UTF-8); also measures decompressed data."""
    encoding = options.pop("encoding", None)
    errors = options.pop("encoding_errors", None) or options.pop("errors", None)
    free, _ = detect.memory_budget()
    if encoding:
        if not source.disk_path:
            source.measure(free)  # decompressed data: its size is only known once read
        return encoding, errors or "strict"
    with source.open() as fh:
        stream = fh if source.disk_path else _Capped(fh, free, source)
        guess = detect.detect_encoding(stream, source.label)
    source.size = guess.size
    if guess.note:
        note(guess.note)
    return guess.encoding, errors or guess.errors


class _Capped(io.RawIOBase):
    """A decompressing stream that stops once it has produced more than the run can hold."""

    def __init__(self, raw, limit: int | None, source: Source):
        self._raw, self._limit, self._seen, self._source = raw, limit, 0, source

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._seen += len(data)
        if self._limit is not None and self._seen > self._limit:
            raise TooLarge(f"it unpacks to more than {human(self._limit)}")
        return data


def _text_guard(source: Source, factor: float, fix: str) -> None:
    if source.size:
        guard(source, factor * source.size, f"its {human(source.size)} of text", fix)


def _sample(source: Source, encoding: str) -> tuple[str, bool]:
    import codecs

    with source.open() as fh:
        raw = fh.read(_SAMPLE)
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    return decoder.decode(raw, final=len(raw) < _SAMPLE), len(raw) < _SAMPLE


def _read_pandas(source: Source, reader, **options):
    """A pandas reader on the file's path, or on a stream of data that is not on disk."""
    if source.disk_path:
        return reader(source.disk_path, **options)
    with source.open() as stream:
        return reader(stream, **options)


def _load_delimited(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    encoding, errors = _encoding(source, options)
    _text_guard(source, 3, "usecols=[...] or nrows=N reads less, and pandas.read_csv("
                "get_file_path(...), chunksize=N) reads it in parts.")
    sample, complete = _sample(source, encoding)
    if "sep" not in options and "delimiter" not in options:
        default = {"tsv": "\t", "psv": "|"}.get(source.type, ",")
        options["sep"] = detect.sniff_delimiter(sample, default, complete) or default
    _headerless(options, sample.splitlines())
    if errors != "strict":
        options["encoding_errors"] = errors
    try:
        return _read_pandas(source, pd.read_csv, encoding=encoding, **options)
    except pd.errors.EmptyDataError:
        note(f"{source.label} holds no table (it is empty or blank): returning an empty "
             "DataFrame")
        return pd.DataFrame()
    except pd.errors.ParserError:
        if any(key in options for key in ("skiprows", "header", "on_bad_lines")):
            raise
        sep = options.get("sep") or options.get("delimiter") or ","
        skip = detect.header_row(sample, sep)
        if not skip:
            raise
    note(f"{source.label}: skipped {skip} line(s) before the table (titles or notes); pass "
         "skiprows= to choose")
    _headerless(options, sample.splitlines()[skip:])
    return _read_pandas(source, pd.read_csv, encoding=encoding, skiprows=skip, **options)


def _headerless(options: dict, lines: list[str]) -> None:
    """Numeric columns lined up with spaces (.dat files) rarely have a header line: when the
    first line is numbers, it is data."""
    if options.get("sep") != r"\s+" or "header" in options or "names" in options:
        return
    first = next((line.split() for line in lines if line.strip()), [])
    if first and all(detect.is_number(token) for token in first):
        options["header"] = None


def _load_fixed_width(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    encoding, errors = _encoding(source, options)
    _text_guard(source, 3, "")
    if errors != "strict":
        options["encoding_errors"] = errors
    return _read_pandas(source, pd.read_fwf, encoding=encoding, **options)


def _read_text(source: Source, options: dict, factor: float = 2) -> str:
    encoding, errors = _encoding(source, options)
    _text_guard(source, factor, "")
    with source.open() as fh, io.TextIOWrapper(fh, encoding=encoding, errors=errors) as text:
        return text.read()


def _load_text(source: Source, options: dict):
    if "errors" not in options and "encoding_errors" not in options:
        options["errors"] = "replace"
    return _read_text(source, options)


# Spreadsheets


def _load_spreadsheet(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    engine = {"xls": ("xlrd", "xlrd"), "ods": ("odf", "odfpy"), "fods": ("odf", "odfpy"),
              "xlsb": ("pyxlsb", "pyxlsb")}.get(source.type, ("openpyxl", "openpyxl"))
    require(engine[0], engine[1], source)
    path = source.path()
    _spreadsheet_guard(source, path)
    if options.pop("all_sheets", False):
        options["sheet_name"] = None
    elif "sheet" in options:
        options["sheet_name"] = options.pop("sheet")
    options.setdefault("engine", engine[0])
    if options["engine"] == "xlrd" and "engine_kwargs" not in options:
        import sys

        options["engine_kwargs"] = {"logfile": sys.stderr}  # xlrd warns on stdout otherwise
    return pd.read_excel(path, **options)


def _spreadsheet_guard(source: Source, path: str) -> None:
    import zipfile

    if source.type not in ("xlsx", "xlsm", "xltx", "ods"):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            if source.type == "ods":
                xml = sum(i.file_size for i in archive.infolist() if i.filename == "content.xml")
                factor = 15  # odfpy builds a DOM of the whole document
            else:
                xml = sum(i.file_size for i in archive.infolist()
                          if i.filename.startswith("xl/worksheets/"))
                factor = 3
    except (zipfile.BadZipFile, OSError):
        return  # the reader reports a damaged file
    guard(source, factor * xml, f"its sheets hold {human(xml)} of XML",
          "sheet='name' reads one sheet, nrows=N fewer rows.")


def _load_html_table(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    require("lxml", "lxml", source)
    all_tables = options.pop("all_sheets", False)
    text = _read_text(source, options, factor=10)
    tables = pd.read_html(io.StringIO(text), **options)
    if all_tables or len(tables) == 1:
        return tables if all_tables else tables[0]
    note(f"{source.label} holds {len(tables)} HTML tables: returning the first "
         "(all_sheets=True gives them all as a list)")
    return tables[0]


# Structured text


def _load_json(source: Source, options: dict):
    as_dataframe = options.pop("as_dataframe", True)
    text = _read_text(source, options, factor=8)
    try:
        data = json.loads(text, **options)
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise
        data = _json_lines(text)  # one JSON value per line: JSON Lines under a .json name
        note(f"{source.label} holds one JSON value per line (JSON Lines): read them all")
    return _records(source, data, as_dataframe)


def _json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _records(source: Source, data, as_dataframe: bool):
    if not as_dataframe:
        return data
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        pd = require("pandas", "pandas", source)
        return pd.DataFrame(data)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        # pandas' own layouts, unmistakable by their keys: orient="split" and orient="table"
        pd = require("pandas", "pandas", source)
        if set(data) <= {"columns", "index", "data", "name"} and "columns" in data:
            return pd.DataFrame(data["data"], columns=data["columns"], index=data.get("index"))
        schema = data.get("schema")
        if set(data) == {"schema", "data"} and isinstance(schema, dict) and "fields" in schema:
            return pd.read_json(io.StringIO(json.dumps(data)), orient="table")
    return data


def _load_json_lines(source: Source, options: dict):
    as_dataframe = options.pop("as_dataframe", True)
    text = _read_text(source, options, factor=8)
    return _records(source, _json_lines(text), as_dataframe)


def _load_yaml(source: Source, options: dict):
    yaml = require("yaml", "pyyaml", source)
    documents = list(yaml.safe_load_all(_read_text(source, options, factor=8)))
    return documents[0] if len(documents) == 1 else documents


def _load_toml(source: Source, options: dict):
    import tomllib

    return tomllib.loads(_read_text(source, {"encoding": options.pop("encoding", "utf-8")}),
                         **options)


def _load_xml(source: Source, options: dict):
    if options.pop("as_dataframe", False):
        pd = require("pandas", "pandas", source)
        require("lxml", "lxml", source)
        return _read_pandas(source, pd.read_xml, **options)
    import xml.etree.ElementTree as ElementTree

    with source.open() as fh:  # the XML declaration names its own encoding
        return ElementTree.parse(fh).getroot()


def _load_ini(source: Source, options: dict):
    import configparser

    parser = configparser.ConfigParser(interpolation=None, **options)
    text = _read_text(source, {})
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        parser.read_string("[DEFAULT]\n" + text)  # .properties and section-less .cfg files
    return {name: dict(parser[name]) for name in parser if name != "DEFAULT" or parser[name]}


def _load_msgpack(source: Source, options: dict):
    msgpack = require("msgpack", "msgpack", source)
    as_dataframe = options.pop("as_dataframe", True)
    free, _ = detect.memory_budget()
    size = source.measure(free)
    guard(source, 10 * size, f"its {human(size)} of MessagePack", "")
    options.setdefault("raw", False)
    options.setdefault("strict_map_key", False)
    with source.open() as fh:
        items = list(msgpack.Unpacker(fh, max_buffer_size=max(size, 1 << 20), **options))
    if len(items) != 1:
        note(f"{source.label} holds {len(items)} MessagePack values one after another: "
             "returning them as a list")
    return _records(source, items[0] if len(items) == 1 else items, as_dataframe)


def _load_arff(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    text = _read_text(source, {"encoding": options.pop("encoding", None)}, factor=6)
    try:
        arff = require("scipy.io.arff", "scipy", source)
        data, _meta = arff.loadarff(io.StringIO(text))
    except MissingLibraryError:
        raise
    except Exception as exc:  # noqa: BLE001 - scipy reads no string, zoned date or sparse data
        frame = _parse_arff(pd, text)
        note(f"{source.label}: scipy.io.arff could not read it ({' '.join(str(exc).split())}); "
             "read with a plain ARFF parser (nominal and string values as text)")
        return frame
    frame = pd.DataFrame(data)
    for name in frame.columns:  # nominal values come back as bytes
        if frame[name].dtype == object:
            frame[name] = frame[name].map(
                lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    return frame


def _parse_arff(pd, text: str):
    import re

    names, kinds, lines = [], [], text.splitlines()
    start = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        lower = stripped.lower()
        if lower.startswith("@attribute"):
            match = re.match(r"@attribute\s+('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)\s*(.*)$",
                             stripped, re.IGNORECASE)
            if match:
                names.append(match.group(1)[1:-1] if match.group(1)[0] in "'\"" else match.group(1))
                kinds.append(match.group(2).strip().lower())
        elif lower.startswith("@data"):
            start = index + 1
            break
    body = [line for line in lines[start:] if line.strip() and not line.lstrip().startswith("%")]
    if body and body[0].lstrip().startswith("{"):  # sparse rows: {index value, ...}
        rows = []
        for line in body:
            row: list = [0] * len(names)
            for pair in line.strip().strip("{}").split(","):
                if pair.strip():
                    index, _, value = pair.strip().partition(" ")
                    row[int(index)] = value.strip().strip("'\"")
            rows.append(row)
        frame = pd.DataFrame(rows, columns=names)
    else:
        sample = "".join(body[:50])
        quote = '"' if sample.count('"') > sample.count("'") else "'"
        frame = pd.read_csv(io.StringIO("\n".join(body)), names=names, header=None,
                            quotechar=quote, escapechar="\\", skipinitialspace=True,
                            na_values=["?"], keep_default_na=False, dtype=str)
    frame = frame.replace("?", None)
    for name, kind in zip(names, kinds):
        word = kind.split()[0] if kind else ""
        if word in ("numeric", "real", "integer"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        elif word == "date":
            try:
                frame[name] = pd.to_datetime(frame[name])
            except (ValueError, TypeError):
                pass  # a format pandas does not guess: kept as text
    return frame


# Statistical packages


_STAT_METADATA = {"stata": "read_dta", "sas": "read_sas7bdat", "xport": "read_xport",
                  "spss": "read_sav", "spss_portable": "read_por"}
_PANDAS_STAT = {"stata": "read_stata", "sas": "read_sas", "xport": "read_sas",
                "spss": "read_spss"}


def _load_statistical(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    path = source.path()
    pyreadstat = _stat_guard(source, path)
    if source.type == "spss_portable" or (source.type == "sas" and "catalog_file" in options):
        pyreadstat = pyreadstat or require("pyreadstat", "pyreadstat", source)
        if "catalog_file" in options:
            options.setdefault("apply_value_formats", True)  # the catalog's labels, applied
        frame, _meta = getattr(pyreadstat, _STAT_METADATA[source.type])(path, **options)
        return frame
    if source.type == "spss":
        require("pyreadstat", "pyreadstat", source)
    if source.type in ("sas", "xport"):
        options.setdefault("format", "xport" if source.type == "xport" else "sas7bdat")
    try:
        return getattr(pd, _PANDAS_STAT[source.type])(path, **options)
    except ValueError:
        if source.type != "xport":
            raise
    # pandas reads XPORT version 5 only; pyreadstat reads version 8 too.
    pyreadstat = require("pyreadstat", "pyreadstat", source)
    options.pop("format", None)
    frame, _meta = pyreadstat.read_xport(path, **options)
    return frame


def _stat_guard(source: Source, path: str):
    try:
        import pyreadstat
    except ImportError:
        return None
    try:
        _, meta = getattr(pyreadstat, _STAT_METADATA[source.type])(path, metadataonly=True)
    except Exception:  # noqa: BLE001 - the reader itself reports a damaged file
        return pyreadstat
    rows, columns = meta.number_rows or 0, meta.number_columns or 0
    guard(source, 16 * rows * columns,
          f"it declares {rows:,} rows of {columns} variables",
          "usecols=[...] (pyreadstat) or columns=[...] (Stata) reads fewer variables, and "
          "pyreadstat.read_file_in_chunks reads it in parts.")
    return pyreadstat


def _load_sas_catalog(source: Source, options: dict):
    pyreadstat = require("pyreadstat", "pyreadstat", source)
    _frame, meta = pyreadstat.read_sas7bcat(source.path(), **options)
    note(f"{source.label} is a SAS format catalog: returning its formats as {{format: {{value: "
         "label}}}; load_file('data.sas7bdat', catalog_file=get_file_path(...)) applies them")
    return meta.value_labels


# Arrays


def _load_numpy(source: Source, options: dict):
    np = require("numpy", "numpy", source)
    # The container is the boundary: object arrays (pickled) load like pickles do.
    options.setdefault("allow_pickle", True)
    path = source.path()
    if source.type == "npz":
        import zipfile

        declared = 0
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as fh:
                    declared += _npy_bytes(np, fh) or info.file_size
        guard(source, declared, f"its arrays declare {human(declared)}",
              "numpy.load(get_file_path(...))[name] reads one array.")
        with _np_load(source, np, path, options) as loaded:
            return {name: loaded[name] for name in loaded.files}
    with open(path, "rb") as fh:
        declared = _npy_bytes(np, fh)
    free, _ = detect.memory_budget()
    if declared and free is not None and declared > 0.85 * free \
            and source.disk_path and "mmap_mode" not in options:
        note(f"{source.label}: its array needs {human(declared)}, more than the run has free: "
             "returning it memory-mapped (read-only, read from the file on use)")
        options["mmap_mode"] = "r"
        return np.load(path, **options)
    if declared:
        guard(source, declared, f"its array header declares {human(declared)}", "")
    return _np_load(source, np, path, options)


def _np_load(source: Source, np, path: str, options: dict):
    try:
        loaded = np.load(path, **options)
        if hasattr(loaded, "files"):  # an npz loads lazily: try its object arrays now
            for name in loaded.files:
                loaded[name]
        return loaded
    except UnicodeError:
        if "encoding" in options:
            raise
    note(f"{source.label} holds Python 2 pickled objects: read with encoding='latin1'")
    return np.load(path, encoding="latin1", **options)


def _npy_bytes(np, fh) -> int | None:
    try:
        version = np.lib.format.read_magic(fh)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, _fortran, dtype = reader(fh)
    except Exception:  # noqa: BLE001 - not an array header: np.load reports it
        return None
    count = 1
    for dim in shape:
        count *= dim
    return count * dtype.itemsize


def _load_matlab(source: Source, options: dict):
    scipy_io = require("scipy.io", "scipy", source)
    path = source.path()
    if source.head().startswith(b"MATLAB 7.3") or detect.sniff(source.head()) == "hdf5":
        return _h5py_file(source, f"{source.label} is a MATLAB v7.3 (HDF5) file")
    try:
        variables = scipy_io.whosmat(path)
    except NotImplementedError:
        return _h5py_file(source, f"{source.label} is a MATLAB v7.3 (HDF5) file")
    except Exception:  # noqa: BLE001 - loadmat reports a damaged file
        variables = []
    declared = 0
    for _name, shape, kind in variables:
        if kind != "sparse":
            count = 1
            for dim in shape:
                count *= dim
            declared += 8 * count
    guard(source, declared, f"its variables declare {human(declared)}",
          "variable_names=[...] reads some variables only.")
    try:
        data = scipy_io.loadmat(path, **options)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        return _h5py_file(source, f"{source.label} is a MATLAB v7.3 (HDF5) file")
    return {key: value for key, value in data.items() if not key.startswith("__")}


def _h5py_file(source: Source, why: str):
    h5py = require("h5py", "h5py", source)
    note(f"{why}: returning an h5py.File (read datasets with f[name][...])")
    source.keep = True
    return h5py.File(source.path(), "r")


def _h5_datasets(h5py, handle) -> list:
    found = []
    handle.visititems(lambda name, item: found.append((name, item))
                      if isinstance(item, h5py.Dataset) else None)
    return found


def _h5_bytes(item) -> int:
    try:
        return item.size * item.dtype.itemsize
    except (TypeError, ValueError):  # a type numpy has no equivalent for (PyTables' time...)
        return 0


def _load_hdf5(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    h5py = require("h5py", "h5py", source)
    path = source.path()
    if "key" in options:
        return pd.read_hdf(path, **options)
    with h5py.File(path, "r") as handle:
        declared = sum(_h5_bytes(item) for _, item in _h5_datasets(h5py, handle))
        pandas_file = "pandas_type" in handle.attrs or any(
            "pandas_type" in handle[key].attrs for key in handle.keys())
    free, _ = detect.memory_budget()
    if free is not None and declared > 0.4 * free:
        return _h5py_file(source, f"{source.label} holds {human(declared)} of data, more than "
                                  "fits in memory at once")
    if pandas_file:
        try:
            require("tables", "tables", source)
            with pd.HDFStore(path, mode="r") as store:
                listed = store.keys()
                # Categorical columns of table-format frames keep their categories under
                # <key>/meta/...: part of that frame, not frames of their own.
                keys = [k for k in listed if not any(k.startswith(o + "/meta/") for o in listed)]
                frames = {key: store[key] for key in keys}
            if keys:
                return frames[keys[0]] if len(keys) == 1 else frames
        except (ValueError, TypeError, KeyError, OSError, AttributeError):
            pass
    source.keep = True
    return h5py.File(path, "r")


def _load_netcdf(source: Source, options: dict):
    kind = detect.sniff(source.head())
    if kind == "hdf5":
        return _netcdf4(source)
    if kind == "netcdf_cdf5":
        raise missing("netCDF4", "netCDF4", source,
                      "This is a CDF-5 (64-bit data) NetCDF file, which scipy cannot read.")
    if kind == "nasa_cdf":
        raise missing("cdflib", "cdflib", source, "This is a NASA CDF file, not NetCDF.")
    scipy_io = require("scipy.io", "scipy", source)
    np = require("numpy", "numpy", source)
    path = source.path()
    with scipy_io.netcdf_file(path, "r", mmap=True, maskandscale=True) as handle:
        declared = sum(v.data.nbytes for v in handle.variables.values()
                       if getattr(v, "data", None) is not None)
        guard(source, 2 * declared, f"its variables declare {human(declared)}",
              "scipy.io.netcdf_file(get_file_path(...), mmap=True) reads variables lazily.")
        result = {}
        for name, variable in handle.variables.items():
            # Copies: the file's memory map closes with it. maskandscale gives masked arrays
            # where _FillValue / missing_value are set, and applies scale_factor/add_offset.
            value = variable[...] if variable.shape else variable.getValue()
            result[name] = value.copy() if hasattr(value, "copy") else value
        value = variable = None  # no view of the map may outlive the file
    return result


def _netcdf4(source: Source):
    h5py = require("h5py", "h5py", source)
    np = require("numpy", "numpy", source)
    path = source.path()
    with h5py.File(path, "r") as handle:
        datasets = [(name, item) for name, item in _h5_datasets(h5py, handle)
                    if not _dimension_only(item)]
        declared = sum(_h5_bytes(item) for _, item in datasets)
        free, _ = detect.memory_budget()
        if free is not None and declared > 0.4 * free:
            return _h5py_file(source, f"{source.label} is NetCDF4 with {human(declared)} of data")
        result = {}
        for name, item in datasets:
            data = item[()]
            attrs = item.attrs
            if "_FillValue" in attrs and isinstance(data, np.ndarray):
                data = np.ma.masked_equal(data, attrs["_FillValue"][0]
                                          if np.ndim(attrs["_FillValue"]) else attrs["_FillValue"])
            if "scale_factor" in attrs or "add_offset" in attrs:
                data = data * attrs.get("scale_factor", 1) + attrs.get("add_offset", 0)
            result[name] = data
    return result


def _dimension_only(item) -> bool:
    """NetCDF4 stores a dimension without a coordinate variable as a placeholder dataset."""
    name = item.attrs.get("NAME", b"")
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and name.startswith("This is a netCDF dimension but not")


def _load_idl_save(source: Source, options: dict):
    scipy_io = require("scipy.io", "scipy", source)
    options.setdefault("python_dict", True)
    return dict(scipy_io.readsav(source.path(), **options))


def _load_fits(source: Source, options: dict):
    try:
        from astropy.io import fits
    except ImportError:
        fits = None
    if fits is not None:
        source.keep = True
        return fits.open(source.path(), **options)
    try:
        image = _load_image(source, options)
    except (LoadError, MissingLibraryError):
        raise missing("astropy", "astropy", source) from None
    note(f"{source.label}: astropy is not installed, so this FITS file was read as an image "
         "with Pillow (its first image only, no header)")
    return image


# Python objects, databases


def _load_pickle(source: Source, options: dict):
    import pickle

    try:
        with source.open() as fh:
            return pickle.load(fh, **options)
    except UnicodeDecodeError as exc:
        if "encoding" in options:
            raise
        first = exc  # a Python 2 pickle: its str are bytes, numpy's arrays need latin-1
        try:
            with source.open() as fh:
                loaded = pickle.load(fh, encoding="latin1", **options)
            note(f"{source.label} is a Python 2 pickle: read with encoding='latin1'")
            return loaded
        except Exception:  # noqa: BLE001
            pass
    except Exception as exc:  # noqa: BLE001 - joblib's dumps are pickles with arrays after them
        first = exc
    try:
        import joblib
    except ImportError:
        raise first from None
    try:
        return joblib.load(source.path())
    except Exception:  # noqa: BLE001 - report the plain pickle's reason
        raise first from None


def _load_joblib(source: Source, options: dict):
    joblib = require("joblib", "joblib", source)
    return joblib.load(source.path(), **options)


def _load_sqlite(source: Source, options: dict):
    import sqlite3
    from urllib.parse import quote

    source.keep = True
    # The input folder is read-only: immutable=1 stops SQLite from trying to lock or journal.
    return sqlite3.connect(f"file:{quote(source.path())}?mode=ro&immutable=1", uri=True,
                           **options)


# Images and audio

# Formats Pillow may claim for bytes that are not images (no magic number of their own): only
# believed when the name says so too.
_WEAK_IMAGE_FORMATS = frozenset({"TGA", "PCX", "SPIDER", "XVTHUMB", "MSP", "PALM", "MPEG",
                                 "MCIDAS", "IPTC", "PCD", "FTEX", "GBR", "WMF", "IM", "CUR",
                                 "ICO", "DCX", "WAL", "IMT"})
# Plugins that only identify a format (no decoder in Pillow).
_STUB_IMAGE_FORMATS = frozenset({"BUFR", "GRIB", "HDF5", "MPEG"})


_IMAGE_FIX = ("PIL.Image.open(get_file_path(...)) opens it lazily; .reduce(n), .draft() (JPEG) or "
              ".crop() decode less.")


def _load_image(source: Source, options: dict):
    image_module = require("PIL.Image", "pillow", source)
    free, _ = detect.memory_budget()
    saved = image_module.MAX_IMAGE_PIXELS
    if free:  # Pillow refuses images of more than twice this many pixels before decoding
        image_module.MAX_IMAGE_PIXELS = max(1, free // 16)
    try:
        image = image_module.open(source.path(), **options)
        width, height = image.size
        bands = len(image.getbands())
        per_band = 4 if image.mode in ("I", "F", "I;32") else 2 if "16" in image.mode else 1
        guard(source, width * height * bands * per_band,
              f"its {width} x {height} pixels ({image.mode})", _IMAGE_FIX)
        image.load()
    except image_module.DecompressionBombError as exc:
        import re

        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        what = f"it declares {count}"
        raise too_large(source, f"{what}, past Pillow's decompression-bomb limit for the memory "
                                "this run has free", _IMAGE_FIX) from None
    except image_module.UnidentifiedImageError:
        package = {"heic": ("pillow_heif", "pillow-heif"), "raw_photo": ("rawpy", "rawpy"),
                   "exr": ("OpenEXR", "OpenEXR")}.get(source.type)
        if package:
            raise missing(package[0], package[1], source) from None
        raise LoadError(f"load_file({source.label}): Pillow does not recognise it as an image, "
                        f"though it was taken for {detect.describe(source.type)} "
                        f"({source.type}): it may be damaged or another format. "
                        f"get_file_path({source.entry.id!r}) gives its path.") from None
    finally:
        image_module.MAX_IMAGE_PIXELS = saved
    source.keep = getattr(image, "n_frames", 1) > 1  # later frames are read from the file
    return image


def _try_image(source: Source):
    """An image Pillow recognises by content, for a file no type claimed; None if it is not."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(source.path()) as probe:
            fmt = probe.format
    except Exception:  # noqa: BLE001 - not an image
        return None
    extensions = {ext for ext, name in Image.registered_extensions().items() if name == fmt}
    if fmt in _WEAK_IMAGE_FORMATS and os.path.splitext(source.name)[1].lower() not in extensions:
        return None
    if fmt in _STUB_IMAGE_FORMATS:
        return None
    source.type, source.by_content = "image_by_content", True
    try:
        image = _load_image(source, {})
    except TooLargeToLoadError:
        raise
    except LoadError:
        return None  # Pillow named a format but cannot decode it: the bytes, then
    note(f"{source.label} is an image Pillow recognises by its content ({fmt}): opened it")
    return image


def _load_audio(source: Source, options: dict):
    soundfile = require("soundfile", "soundfile", source)
    path = source.path()
    try:
        info = soundfile.info(path)
        guard(source, 8 * info.frames * info.channels,
              f"its {info.frames:,} frames of {info.channels} channel(s)",
              "frames=N and start=N read a part; dtype='int16' takes a quarter of the memory.")
        data, rate = soundfile.read(path, **options)
    except RuntimeError as exc:  # soundfile's "format not recognised"
        if source.type in ("m4a", "wma", "midi", "mp4"):
            raise missing("audioread", "audioread (with ffmpeg) or pydub", source) from None
        if source.type == "wav":  # scipy reads WAV variants libsndfile does not (36-bit...)
            try:
                from scipy.io import wavfile

                rate, data = wavfile.read(path)
            except Exception:  # noqa: BLE001 - report libsndfile's reason
                raise failed(source, exc, "") from None
            note(f"{source.label}: libsndfile cannot read this WAV variant ({exc}); read with "
                 "scipy.io.wavfile (integer samples, not scaled to [-1, 1])")
            return data, rate
        raise failed(source, exc, "") from None
    return data, rate


# Compressed files and archives


def _load_compressed(source: Source, options: dict):
    inner = decompressed(source, source.type)
    if source.type in ("gzip", "bzip2", "xz") and (
            detect.type_for_name(inner.name) == "tar" or detect.sniff(inner.head()) == "tar"):
        source.type = "tar"  # tarfile reads through the compression itself
        return _load_archive(source, options)
    return read(inner, options)


def _load_archive(source: Source, options: dict):
    """A zip or tar archive: one member is loaded as itself; several give {name: object} for
    those it can read; too many or too large give the path, with a note."""
    wanted = options.pop("member", None)
    found = members(source)
    names = [m.name for m in found]
    if wanted is not None:
        for member in found:
            if member.name == wanted or os.path.basename(member.name) == wanted:
                return read(member, options)
        raise LoadError(f"load_file({source.label}): no member {wanted!r} in this "
                        f"{source.type} archive; it holds: {_listing(names)}.")
    if not found:
        note(f"{source.label} is an empty {source.type} archive: returning its path")
        return source.entry.path
    if len(found) == 1:
        note(f"{source.label} holds one file, {found[0].name!r}: loading it")
        return read(found[0], options)
    declared = sum(m.size or 0 for m in found)
    free, _ = detect.memory_budget()
    if len(found) > MAX_MEMBERS or (free is not None and declared > 0.5 * free):
        why = (f"{len(found)} files" if len(found) > MAX_MEMBERS else
               f"{human(declared)} of files, too much to load at once")
        note(f"{source.label} is a {source.type} archive of {why}: returning its path. "
             f"load_file({source.entry.name!r}, member='name') loads one of: {_listing(names)} "
             "(or open it with zipfile / tarfile; extract to /tmp or the working folder)")
        return _archive_path(source)
    loaded, skipped = {}, []
    for member in found:
        try:
            loaded[member.name] = read(member, dict(options))
        except (LoadError, MissingLibraryError) as exc:
            skipped.append(f"{member.name} ({_short(exc)})")
    if not loaded:
        note(f"{source.label}: none of its {len(found)} files could be read ({'; '.join(skipped)}"
             "): returning its path")
        return _archive_path(source)
    message = f"{source.label}: loaded {len(loaded)} of its {len(found)} files as {{name: object}}"
    if skipped:
        message += f"; skipped {'; '.join(skipped)}"
    note(message + ". member='name' loads one")
    return loaded


def _archive_path(source: Source) -> str:
    return source.entry.path if source.within is None else source.path()


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _short(exc: BaseException) -> str:
    text = str(exc)
    if ": " in text and text.startswith("load_file("):
        text = text.split(": ", 1)[1]
    return text.split(". get_file_path")[0][:160]


def _load_archive_path(source: Source, options: dict):
    if source.within is not None:
        raise LoadError(f"{source.type} archives are not unpacked inside other archives")
    note(f"{source.label} is an archive ({source.type}) this sandbox cannot unpack: returning "
         "its path (the input folder is read-only: extract to /tmp or the working folder)")
    return source.entry.path


def _try_audio(source: Source):
    """Audio libsndfile recognises by content (MP3 without a tag...), for a file no type claimed."""
    try:
        import soundfile

        info = soundfile.info(source.path())
    except Exception:  # noqa: BLE001 - not audio
        return None
    if info.frames <= 0 or info.format in ("RAW",):
        return None
    source.type = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3", "AIFF": "aiff",
                   "AU": "au", "CAF": "caf", "W64": "w64"}.get(info.format, "wav")
    source.by_content = True
    note(f"{source.label} is audio libsndfile recognises by its content ({info.format}): "
         "read it")
    return _load_audio(source, {})


def _load_bytes(source: Source, options: dict):
    image = _try_image(source)
    if image is not None:
        return image
    audio = _try_audio(source)
    if audio is not None:
        return audio
    if source.how.startswith("member"):
        raise LoadError(f"no reader for type {source.type!r}")  # skipped in the archive's dict
    size = source.measure(None)
    guard(source, size, f"its {human(size)}", "")
    note(f"{source.label} has no reader for type {source.type!r}: returning its bytes "
         f"(get_file_path({source.entry.id!r}) gives its path)")
    with source.open() as fh:
        return fh.read()


# Formats whose library is not in the image; some are read once their (approved) package is.


def _needs(module: str, distribution: str, read_with=None):
    def load(source: Source, options: dict):
        try:
            library = __import__(module, fromlist=["_"])
        except ImportError:
            raise missing(module, distribution, source) from None
        if read_with is None:
            raise missing(module, distribution, source)
        source.keep = True
        return read_with(library, source, options)

    return load


def _unsupported(module: str, distribution: str, what: str):
    def load(source: Source, options: dict):
        raise missing(module, distribution, source, what)

    return load


_IN_PARTS = ("Read a part of it: e.g. pandas.read_csv(get_file_path(...), chunksize=N) "
             "(compression is taken from the name), or zipfile / gzip streams.")
_FIXES = {
    "tabular": "Options go to pandas.read_csv: sep=..., encoding=..., header=None, skiprows=N, "
               "on_bad_lines='skip'.",
    "spreadsheet": "Options go to pandas.read_excel: sheet='name', header=N, skiprows=N; "
                   "all_sheets=True reads every sheet.",
    "columnar": columnar.FIX,
    "statistical": "Options go to the pandas reader (read_stata, read_sas, read_spss): e.g. "
                   "encoding=..., convert_categoricals=False.",
    "structured": "as_dataframe=False keeps the parsed object; encoding=... sets the encoding.",
    "array": "Options go to the reader (numpy.load, scipy.io.loadmat, scipy.io.readsav...).",
    "image": "It may be truncated, or in a variant Pillow does not support.",
    "audio": "Options go to soundfile.read: dtype='int16', frames=N, start=N.",
    "serialized": "A pickle may need the package (and version) that wrote it.",
    "text": "encoding=... sets the text encoding.",
}


def _fix(source: Source) -> str:
    if source.type in _SPREADSHEETS:
        return _FIXES["spreadsheet"]
    if source.type in _PANDAS_STAT or source.type == "spss_portable":
        return _FIXES["statistical"]
    if source.type in ("csv", "tsv", "psv", "dsv"):
        return _FIXES["tabular"]
    category = detect.category_of(source.type)
    return "" if category == "tabular" else _FIXES.get(category, "")


def _undecodable(source: Source, exc: UnicodeDecodeError) -> LoadError:
    bad = exc.object[exc.start : exc.start + 1] if isinstance(exc.object, bytes) else b""
    byte = f"byte 0x{bad.hex()} " if bad else ""
    return LoadError(
        f"load_file({source.label}): could not decode it as {exc.encoding} text, reading it as "
        f"{detect.describe(source.type)} ({source.type}): {byte}is not valid there ({exc.reason})."
        " Pass encoding='...' (e.g. 'cp1252', or 'latin-1', which accepts every byte), or "
        f"encoding_errors='replace'. get_file_path({source.entry.id!r}) gives its path."
    )


LOADERS_BY_TYPE = {
    "csv": _load_delimited,
    "tsv": _load_delimited,
    "psv": _load_delimited,
    "dsv": _load_delimited,
    "fwf": _load_fixed_width,
    "arff": _load_arff,
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
    "msgpack": _load_msgpack,
    "parquet": columnar.load_parquet,
    "feather": columnar.load_feather,
    "arrow_stream": columnar.load_feather,
    "orc": columnar.load_orc,
    "stata": _load_statistical,
    "sas": _load_statistical,
    "xport": _load_statistical,
    "spss": _load_statistical,
    "spss_portable": _load_statistical,
    "sas_catalog": _load_sas_catalog,
    "npy": _load_numpy,
    "npz": _load_numpy,
    "mat": _load_matlab,
    "hdf5": _load_hdf5,
    "netcdf": _load_netcdf,
    "fits": _load_fits,
    "pickle": _load_pickle,
    "joblib": _load_joblib,
    "sqlite": _load_sqlite,
    "gpkg": _load_sqlite,
    "svg": _load_text,
    "rtf": _load_text,
    "eml": _load_text,
    "zip": _load_archive,
    "tar": _load_archive,
    "gzip": _load_compressed,
    "bzip2": _load_compressed,
    "xz": _load_compressed,
    "lzma": _load_compressed,
    "zstd": _load_compressed,
    "lz4": _load_compressed,
    "numbers": _needs("numbers_parser", "numbers-parser"),
    "dbf": rowformats.load_dbf,
    "json5": _needs("json5", "json5"),
    "bson": _needs("bson", "pymongo (bson)"),
    "avro": rowformats.load_avro,
    "cbor": _needs("cbor2", "cbor2"),
    "rdata": _needs("pyreadr", "pyreadr", lambda lib, s, o: dict(lib.read_r(s.path(), **o))),
    "rds": _needs("pyreadr", "pyreadr", lambda lib, s, o: lib.read_r(s.path(), **o)[None]),
    "safetensors": _needs("safetensors", "safetensors"),
    "pt": _needs("torch", "torch"),
    "onnx": _needs("onnx", "onnx", lambda lib, s, o: lib.load(s.path(), **o)),
    "dill": _needs("dill", "dill", lambda lib, s, o: lib.load(s.open(), **o)),
    "duckdb": _needs("duckdb", "duckdb",
                     lambda lib, s, o: lib.connect(s.path(), read_only=True, **o)),
    "pdf": _needs("pypdf", "pypdf", lambda lib, s, o: lib.PdfReader(s.path(), **o)),
    "docx": _needs("docx", "python-docx", lambda lib, s, o: lib.Document(s.path(), **o)),
    "pptx": _needs("pptx", "python-pptx", lambda lib, s, o: lib.Presentation(s.path(), **o)),
    "odt": _needs("odf.opendocument", "odfpy",
                  lambda lib, s, o: lib.load(s.path(), **o)),
    "epub": _needs("ebooklib", "ebooklib"),
    "shapefile": _needs("geopandas", "geopandas", lambda lib, s, o: lib.read_file(s.path(), **o)),
    "geotiff": _needs("rasterio", "rasterio", lambda lib, s, o: lib.open(s.path(), **o)),
    "las": _needs("laspy", "laspy", lambda lib, s, o: lib.read(s.path(), **o)),
}
_CONTENT_LOADERS = {
    "idl_save": _load_idl_save,
    "netcdf3": _load_netcdf,
    "netcdf_cdf5": _load_netcdf,
    "nasa_cdf": _load_netcdf,
    "hdf4": _unsupported("pyhdf", "pyhdf", "This is an HDF4 file, which h5py cannot read."),
    "ole2": _unsupported("olefile", "olefile", "This is an OLE2 compound document of an "
                                               "unknown kind."),
    "encrypted_office": _unsupported("msoffcrypto", "msoffcrypto-tool",
                                     "This is a password-protected Office file: decrypt it first "
                                     "(msoffcrypto-tool), or save it without a password."),
    "html_table": _load_html_table,
    "image_by_content": _load_image,
}
LOADERS_BY_CATEGORY = {
    "image": _load_image,
    "audio": _load_audio,
    "video": _needs("imageio", "imageio[ffmpeg] or opencv-python"),
    "text": _load_text,
    "code": _load_text,
    "archive": _load_archive_path,
    "binary": _load_bytes,
}
