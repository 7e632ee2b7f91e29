"""The readers behind load_file, and how one is chosen: by content first, then by name.

A file's first bytes decide where they declare a format (an IDL .sav is not an SPSS .sav, a
.csv that is gzip is read as the CSV inside it); the type the host found from the name decides
otherwise; unknown binaries are tried with the readers that recognise content (Pillow) before
they come back as bytes. Every failure is a LoadError or MissingLibraryError naming the file,
the type it was taken for and the fix (sandbox_errors), and what declares more than the run's
free memory is refused before it is read.
"""

from __future__ import annotations

import os

import sandbox_columnar as columnar
import sandbox_detect as detect
import sandbox_encodings
import sandbox_media as media
import sandbox_rowformats as rowformats
import sandbox_science as science
import sandbox_text as text
from sandbox_archives import MAX_MEMBERS, Source, TooLarge, decompressed, human, members, zip_kind
from sandbox_errors import (
    LoadError,
    MissingLibraryError,
    failed,
    guard,
    missing,
    note,
    too_large,
)

MAX_DEPTH = 3  # a member of a compressed member of an archive, and no deeper
_GENERIC = frozenset({None, "", "binary", "text", "unknown"})
# Signature found -> the types whose files legitimately carry it.
_CARRIERS = {
    "zip": frozenset(
        {
            "xlsx",
            "xlsm",
            "xltx",
            "xlsb",
            "ods",
            "numbers",
            "docx",
            "odt",
            "pptx",
            "odp",
            "epub",
            "pages",
            "jar",
            "whl",
            "kmz",
            "npz",
            "zarr",
            "joblib",
            "pt",
            "mat",
            "zip",
        }
    ),
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
_WEAK_SIGNATURES = frozenset(
    {"mp3", "bmp", "rtf", "fits", "midi", "xpm", "stata", "au", "form", "caf"}
)
_TEXT_CATEGORIES = frozenset({"tabular", "structured", "text", "code", "geospatial"})
_OFFICE_ZIPS = frozenset({"xlsx", "xlsm", "xltx", "xlsb", "ods", "docx", "odt", "pptx", "odp"})


def load(entry, options: dict):
    if not os.path.isfile(entry.path):
        # The input mount, not the file's format: say so (python -m app doctor looks for this).
        raise FileNotFoundError(
            f"load_file({entry.name!r}): {entry.path} is not in the input "
            "folder: the sandbox cannot see the user's files"
        )
    source = Source(entry, entry.name, entry.type or None, path=entry.path, size=entry.size or None)
    return read(source, options)


def read(source: Source, options: dict):
    """Choose the reader for a source and run it; every failure becomes a clear error."""
    if source.depth > MAX_DEPTH:
        raise LoadError(
            f"load_file({source.label}): {source.name!r} is nested too deeply in "
            f"archives to unpack here. get_file_path({source.entry.id!r}) gives the "
            "outer file's path."
        )
    if source.given == "encrypted":
        raise LoadError(
            f"load_file({source.label}): it is encrypted (password-protected): "
            "pass password='...' to read it (zip's ZipCrypto; AES-encrypted zips "
            "need pyzipper)."
        )
    try:
        source.type = _choose(source)
        reader = (
            LOADERS_BY_TYPE.get(source.type)
            or _CONTENT_LOADERS.get(source.type)
            or LOADERS_BY_CATEGORY.get(detect.category_of(source.type))
            or _load_bytes
        )
        return reader(source, options)
    except (LoadError, MissingLibraryError):
        raise
    except TooLarge as exc:
        raise too_large(source, str(exc), _IN_PARTS) from None
    except MemoryError:
        raise too_large(source, "it did not fit in memory", _IN_PARTS) from None
    except UnicodeDecodeError as exc:
        raise _undecodable(source, exc) from None
    except Exception as exc:
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
        if (
            found in _WEAK_SIGNATURES
            and detect.category_of(given) in _TEXT_CATEGORIES
            and detect.looks_like_text(head)
        ):
            return given  # "ID3,..." or "BM..." at the start of a CSV is just text
        if given not in _GENERIC:
            note(
                f"{source.label}: its bytes say {detect.describe(found)} ({found}), not "
                f"{detect.describe(given)} ({given}) as its name does: reading it as {found}"
            )
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
    if (
        (given == "text" and by_name in text.SPREADSHEETS) or given in text.SPREADSHEETS - {"fods"}
    ) and detect.looks_like_text(head):
        kind = detect.sniff_text(_head_text(head))  # "Excel" exports that are HTML or CSV
        if kind in ("html", "csv", "tsv"):
            source.by_content = True
            note(
                f"{source.label} is {'an HTML table' if kind == 'html' else 'delimited text'}, "
                f"not a binary spreadsheet: reading it as {kind}"
            )
            return "html_table" if kind == "html" else kind
    return given


def _head_text(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", "replace")
    encoding = sandbox_encodings.utf16_without_bom(head)
    return head.decode(encoding or "utf-8", "replace")


# Compressed files and archives


def _load_compressed(source: Source, options: dict):
    inner = decompressed(source, source.type)
    if source.type in ("gzip", "bzip2", "xz") and (
        detect.type_for_name(inner.name) == "tar" or detect.sniff(inner.head()) == "tar"
    ):
        source.type = "tar"  # tarfile reads through the compression itself
        return _load_archive(source, options)
    return read(inner, options)


def _load_archive(source: Source, options: dict):
    """A zip or tar archive: one member is loaded as itself; several give {name: object} for
    those it can read; too many or too large give the path, with a note."""
    wanted = options.pop("member", None)
    password = options.pop("password", None)
    if isinstance(password, str):
        password = password.encode()
    found = members(source, password)
    names = [m.name for m in found]
    if wanted is not None:
        for member in found:
            if member.name == wanted or os.path.basename(member.name) == wanted:
                return read(member, options)
        raise LoadError(
            f"load_file({source.label}): no member {wanted!r} in this "
            f"{source.type} archive; it holds: {_listing(names)}."
        )
    if not found:
        note(f"{source.label} is an empty {source.type} archive: returning its path")
        return source.entry.path
    if len(found) == 1:
        note(f"{source.label} holds one file, {found[0].name!r}: loading it")
        return read(found[0], options)
    declared = sum(m.size or 0 for m in found)
    free, _ = detect.memory_budget()
    if len(found) > MAX_MEMBERS or (free is not None and declared > 0.5 * free):
        why = (
            f"{len(found)} files"
            if len(found) > MAX_MEMBERS
            else f"{human(declared)} of files, too much to load at once"
        )
        note(
            f"{source.label} is a {source.type} archive of {why}: returning its path. "
            f"load_file({source.entry.name!r}, member='name') loads one of: {_listing(names)} "
            "(or open it with zipfile / tarfile; extract to /tmp or the working folder)"
        )
        return _archive_path(source)
    loaded, skipped = {}, []
    for member in found:
        member.listed = True  # unreadable data is skipped, not returned as bytes
        try:
            loaded[member.name] = read(member, dict(options))
        except (LoadError, MissingLibraryError) as exc:
            skipped.append(f"{member.name} ({_short(exc)})")
    if not loaded:
        note(
            f"{source.label}: none of its {len(found)} files could be read ({'; '.join(skipped)}"
            "): returning its path"
        )
        return _archive_path(source)
    message = f"{source.label}: loaded {len(loaded)} of its {len(found)} files as {{name: object}}"
    if skipped:
        message += f"; skipped {'; '.join(skipped)}"
    note(message + ". member='name' loads one")
    return loaded


def _archive_path(source: Source) -> str:
    if source.within is None:
        return source.entry.path
    source.keep = True  # an archive inside another: its unpacked copy is what the path names
    return source.path()


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _short(exc: BaseException) -> str:
    message = str(exc)
    if ": " in message and message.startswith("load_file("):
        message = message.split(": ", 1)[1]
    return message.split(". get_file_path")[0][:160]


def _load_archive_path(source: Source, options: dict):
    if source.within is not None:
        raise LoadError(f"{source.type} archives are not unpacked inside other archives")
    note(
        f"{source.label} is an archive ({source.type}) this sandbox cannot unpack: returning "
        "its path (the input folder is read-only: extract to /tmp or the working folder)"
    )
    return source.entry.path


def _load_bytes(source: Source, options: dict):
    image = media.try_image(source)
    if image is not None:
        return image
    audio = media.try_audio(source)
    if audio is not None:
        return audio
    if source.listed:
        raise LoadError(f"no reader for type {source.type!r}")  # skipped in the archive's dict
    size = source.measure(None)
    guard(source, size, f"its {human(size)}", "")
    note(
        f"{source.label} has no reader for type {source.type!r}: returning its bytes "
        f"(get_file_path({source.entry.id!r}) gives its path)"
    )
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


_IN_PARTS = (
    "Read a part of it: e.g. pandas.read_csv(get_file_path(...), chunksize=N) "
    "(compression is taken from the name), or zipfile / gzip streams."
)
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
    if source.type in text.SPREADSHEETS:
        return _FIXES["spreadsheet"]
    if source.type in science.PANDAS_STAT or source.type == "spss_portable":
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
    "csv": text.load_delimited,
    "tsv": text.load_delimited,
    "psv": text.load_delimited,
    "dsv": text.load_delimited,
    "fwf": text.load_fixed_width,
    "arff": text.load_arff,
    "xlsx": text.load_spreadsheet,
    "xlsm": text.load_spreadsheet,
    "xltx": text.load_spreadsheet,
    "xls": text.load_spreadsheet,
    "xlsb": text.load_spreadsheet,
    "ods": text.load_spreadsheet,
    "fods": text.load_spreadsheet,
    "json": text.load_json,
    "geojson": text.load_json,
    "topojson": text.load_json,
    "ipynb": text.load_json,
    "jsonl": text.load_json_lines,
    "yaml": text.load_yaml,
    "toml": text.load_toml,
    "xml": text.load_xml,
    "kml": text.load_xml,
    "gpx": text.load_xml,
    "gml": text.load_xml,
    "ini": text.load_ini,
    "msgpack": text.load_msgpack,
    "parquet": columnar.load_parquet,
    "feather": columnar.load_feather,
    "arrow_stream": columnar.load_feather,
    "orc": columnar.load_orc,
    "stata": science.load_statistical,
    "sas": science.load_statistical,
    "xport": science.load_statistical,
    "spss": science.load_statistical,
    "spss_portable": science.load_statistical,
    "sas_catalog": science.load_sas_catalog,
    "npy": science.load_numpy,
    "npz": science.load_numpy,
    "mat": science.load_matlab,
    "hdf5": science.load_hdf5,
    "netcdf": science.load_netcdf,
    "fits": science.load_fits,
    "pickle": science.load_pickle,
    "joblib": science.load_joblib,
    "sqlite": science.load_sqlite,
    "gpkg": science.load_sqlite,
    "svg": text.load_text,
    "rtf": text.load_text,
    "eml": text.load_text,
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
    "duckdb": _needs(
        "duckdb", "duckdb", lambda lib, s, o: lib.connect(s.path(), read_only=True, **o)
    ),
    "pdf": _needs("pypdf", "pypdf", lambda lib, s, o: lib.PdfReader(s.path(), **o)),
    "docx": _needs("docx", "python-docx", lambda lib, s, o: lib.Document(s.path(), **o)),
    "pptx": _needs("pptx", "python-pptx", lambda lib, s, o: lib.Presentation(s.path(), **o)),
    "odt": _needs("odf.opendocument", "odfpy", lambda lib, s, o: lib.load(s.path(), **o)),
    "epub": _needs("ebooklib", "ebooklib"),
    "shapefile": _needs("geopandas", "geopandas", lambda lib, s, o: lib.read_file(s.path(), **o)),
    "geotiff": _needs("rasterio", "rasterio", lambda lib, s, o: lib.open(s.path(), **o)),
    "las": _needs("laspy", "laspy", lambda lib, s, o: lib.read(s.path(), **o)),
}
_CONTENT_LOADERS = {
    "idl_save": science.load_idl_save,
    "netcdf3": science.load_netcdf,
    "netcdf_cdf5": science.load_netcdf,
    "nasa_cdf": science.load_netcdf,
    "hdf4": _unsupported("pyhdf", "pyhdf", "This is an HDF4 file, which h5py cannot read."),
    "ole2": _unsupported(
        "olefile", "olefile", "This is an OLE2 compound document of an unknown kind."
    ),
    "encrypted_office": _unsupported(
        "msoffcrypto",
        "msoffcrypto-tool",
        "This is a password-protected Office file: decrypt it first "
        "(msoffcrypto-tool), or save it without a password.",
    ),
    "html_table": text.load_html_table,
    "image_by_content": media.load_image,
}
LOADERS_BY_CATEGORY = {
    "image": media.load_image,
    "audio": media.load_audio,
    "video": _needs("imageio", "imageio[ffmpeg] or opencv-python"),
    "text": text.load_text,
    "code": text.load_text,
    "archive": _load_archive_path,
    "binary": _load_bytes,
}
