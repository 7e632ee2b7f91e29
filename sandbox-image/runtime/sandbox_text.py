"""Text-based formats for load_file: delimited tables, fixed-width, plain text, spreadsheets
(and the HTML or CSV that "Excel" exports often are), JSON, YAML, TOML, XML, INI, MessagePack
and ARFF. Text is decoded with the encoding detected over the whole file (sandbox_detect)."""

from __future__ import annotations

import io
import json

import sandbox_detect as detect
from sandbox_archives import Source, TooLarge, human
from sandbox_errors import MissingLibraryError, guard, note, require

_SAMPLE = 65536
SPREADSHEETS = frozenset({"xlsx", "xlsm", "xltx", "xls", "xlsb", "ods", "fods"})


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


def load_delimited(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    encoding, errors = _encoding(source, options)
    _text_guard(
        source,
        3,
        "usecols=[...] or nrows=N reads less, and pandas.read_csv("
        "get_file_path(...), chunksize=N) reads it in parts.",
    )
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
        note(f"{source.label} holds no table (it is empty or blank): returning an empty DataFrame")
        return pd.DataFrame()
    except pd.errors.ParserError:
        if any(key in options for key in ("skiprows", "header", "on_bad_lines")):
            raise
        sep = options.get("sep") or options.get("delimiter") or ","
        skip = detect.header_row(sample, sep)
        if not skip:
            raise
    note(
        f"{source.label}: skipped {skip} line(s) before the table (titles or notes); pass "
        "skiprows= to choose"
    )
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


def load_fixed_width(source: Source, options: dict):
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


def load_text(source: Source, options: dict):
    if "errors" not in options and "encoding_errors" not in options:
        options["errors"] = "replace"
    return _read_text(source, options)


# Spreadsheets


def load_spreadsheet(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    engine = {
        "xls": ("xlrd", "xlrd"),
        "ods": ("odf", "odfpy"),
        "fods": ("odf", "odfpy"),
        "xlsb": ("pyxlsb", "pyxlsb"),
    }.get(source.type, ("openpyxl", "openpyxl"))
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
                xml = sum(
                    i.file_size
                    for i in archive.infolist()
                    if i.filename.startswith("xl/worksheets/")
                )
                factor = 3
    except (zipfile.BadZipFile, OSError):
        return  # the reader reports a damaged file
    guard(
        source,
        factor * xml,
        f"its sheets hold {human(xml)} of XML",
        "sheet='name' reads one sheet, nrows=N fewer rows.",
    )


def load_html_table(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    require("lxml", "lxml", source)
    all_tables = options.pop("all_sheets", False)
    text = _read_text(source, options, factor=10)
    tables = pd.read_html(io.StringIO(text), **options)
    if all_tables or len(tables) == 1:
        return tables if all_tables else tables[0]
    note(
        f"{source.label} holds {len(tables)} HTML tables: returning the first "
        "(all_sheets=True gives them all as a list)"
    )
    return tables[0]


# Structured text


def load_json(source: Source, options: dict):
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


def load_json_lines(source: Source, options: dict):
    as_dataframe = options.pop("as_dataframe", True)
    text = _read_text(source, options, factor=8)
    return _records(source, _json_lines(text), as_dataframe)


def load_yaml(source: Source, options: dict):
    yaml = require("yaml", "pyyaml", source)
    documents = list(yaml.safe_load_all(_read_text(source, options, factor=8)))
    return documents[0] if len(documents) == 1 else documents


def load_toml(source: Source, options: dict):
    import tomllib

    return tomllib.loads(
        _read_text(source, {"encoding": options.pop("encoding", "utf-8")}), **options
    )


def load_xml(source: Source, options: dict):
    if options.pop("as_dataframe", False):
        pd = require("pandas", "pandas", source)
        require("lxml", "lxml", source)
        return _read_pandas(source, pd.read_xml, **options)
    import xml.etree.ElementTree as ElementTree

    with source.open() as fh:  # the XML declaration names its own encoding
        return ElementTree.parse(fh).getroot()


def load_ini(source: Source, options: dict):
    import configparser

    parser = configparser.ConfigParser(interpolation=None, **options)
    text = _read_text(source, {})
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        parser.read_string("[DEFAULT]\n" + text)  # .properties and section-less .cfg files
    return {name: dict(parser[name]) for name in parser if name != "DEFAULT" or parser[name]}


def load_msgpack(source: Source, options: dict):
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
        note(
            f"{source.label} holds {len(items)} MessagePack values one after another: "
            "returning them as a list"
        )
    return _records(source, items[0] if len(items) == 1 else items, as_dataframe)


def load_arff(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    text = _read_text(source, {"encoding": options.pop("encoding", None)}, factor=6)
    try:
        arff = require("scipy.io.arff", "scipy", source)
        data, _meta = arff.loadarff(io.StringIO(text))
    except MissingLibraryError:
        raise
    except Exception as exc:
        frame = _parse_arff(pd, text)
        note(
            f"{source.label}: scipy.io.arff could not read it ({' '.join(str(exc).split())}); "
            "read with a plain ARFF parser (nominal and string values as text)"
        )
        return frame
    frame = pd.DataFrame(data)
    for name in frame.columns:  # nominal values come back as bytes
        if frame[name].dtype == object:
            frame[name] = frame[name].map(
                lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            )
    return frame


def _parse_arff(pd, text: str):
    import re

    names, kinds, lines = [], [], text.splitlines()
    start = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        lower = stripped.lower()
        if lower.startswith("@attribute"):
            match = re.match(
                r"@attribute\s+('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)\s*(.*)$",
                stripped,
                re.IGNORECASE,
            )
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
        frame = pd.read_csv(
            io.StringIO("\n".join(body)),
            names=names,
            header=None,
            quotechar=quote,
            escapechar="\\",
            skipinitialspace=True,
            na_values=["?"],
            keep_default_na=False,
            dtype=str,
        )
    frame = frame.replace("?", None)
    for name, kind in zip(names, kinds, strict=False):
        word = kind.split()[0] if kind else ""
        if word in ("numeric", "real", "integer"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        elif word == "date":
            try:
                frame[name] = pd.to_datetime(frame[name])
            except (ValueError, TypeError):
                pass  # a format pandas does not guess: kept as text
    return frame
