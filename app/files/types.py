"""The one table of file types: extension -> (type, category, description), plus magic bytes.

This module is the single source for the file store, the bot, the model prompt and the sandbox
loader: the store records `type` and `category` from here and passes both to each run, and the
loader in the image picks its reader by those names (tests/unit/test_file_types.py checks that
every name the loader knows is in this table). No third-party imports, so anything can use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CATEGORIES = {
    "tabular": "Tables: delimited text and spreadsheets",
    "structured": "Nested data: JSON, YAML, TOML, XML and friends",
    "columnar": "Columnar and statistical data files (Parquet, Feather, Stata, SAS, SPSS...)",
    "array": "Binary scientific arrays (NumPy, MATLAB, HDF5, NetCDF...)",
    "serialized": "Serialized Python objects (pickle, joblib)",
    "database": "Database files (SQLite)",
    "image": "Images",
    "audio": "Audio",
    "video": "Video",
    "code": "Source code and scripts",
    "document": "Documents (PDF, Office, e-books)",
    "geospatial": "Geospatial data (GeoJSON, shapefiles, GPX, KML...)",
    "archive": "Archives and compressed files",
    "text": "Plain text",
    "binary": "Other binary data",
}


@dataclass(frozen=True)
class FileType:
    extension: str  # ".csv"
    type: str  # "csv"
    category: str  # one of CATEGORIES
    description: str  # "Comma-separated values"


# (type, category, description, extensions). The first extension is the canonical one: files are
# stored on disk as <file_id><canonical extension>.
_TABLE: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # tabular
    ("csv", "tabular", "Comma-separated values", (".csv",)),
    ("tsv", "tabular", "Tab-separated values", (".tsv", ".tab")),
    ("psv", "tabular", "Pipe-separated values", (".psv",)),
    ("dsv", "tabular", "Delimited text", (".dsv",)),
    ("xlsx", "tabular", "Excel workbook", (".xlsx",)),
    ("xlsm", "tabular", "Excel macro-enabled workbook", (".xlsm",)),
    ("xltx", "tabular", "Excel template", (".xltx", ".xltm")),
    ("xls", "tabular", "Excel 97-2003 workbook", (".xls",)),
    ("xlsb", "tabular", "Excel binary workbook", (".xlsb",)),
    ("ods", "tabular", "OpenDocument spreadsheet", (".ods",)),
    ("fods", "tabular", "Flat OpenDocument spreadsheet", (".fods",)),
    ("numbers", "tabular", "Apple Numbers spreadsheet", (".numbers",)),
    ("dbf", "tabular", "dBASE table", (".dbf",)),
    ("fwf", "tabular", "Fixed-width text table", (".fwf",)),
    ("arff", "tabular", "Weka ARFF table", (".arff",)),
    # structured
    ("json", "structured", "JSON", (".json", ".geojsonld", ".webmanifest")),
    ("jsonl", "structured", "JSON Lines", (".jsonl", ".ndjson", ".jsonlines")),
    ("json5", "structured", "JSON5", (".json5",)),
    ("yaml", "structured", "YAML", (".yaml", ".yml")),
    ("toml", "structured", "TOML", (".toml",)),
    ("xml", "structured", "XML", (".xml", ".xsd", ".xsl", ".xslt", ".rss", ".atom", ".plist")),
    ("ini", "structured", "INI configuration", (".ini", ".cfg", ".conf", ".properties")),
    ("env", "structured", "Environment file", (".env",)),
    ("msgpack", "structured", "MessagePack", (".msgpack", ".mpk")),
    ("bson", "structured", "BSON", (".bson",)),
    ("avro", "structured", "Apache Avro", (".avro",)),
    ("protobuf", "structured", "Protocol Buffers data", (".pb",)),
    ("cbor", "structured", "CBOR", (".cbor",)),
    # columnar and statistical
    ("parquet", "columnar", "Apache Parquet", (".parquet", ".pq")),
    ("feather", "columnar", "Feather / Arrow IPC", (".feather", ".arrow", ".ipc")),
    ("arrow_stream", "columnar", "Arrow IPC stream", (".arrows",)),
    ("orc", "columnar", "Apache ORC", (".orc",)),
    ("stata", "columnar", "Stata dataset", (".dta",)),
    ("sas", "columnar", "SAS dataset", (".sas7bdat",)),
    ("sas_catalog", "columnar", "SAS format catalog", (".sas7bcat",)),
    ("xport", "columnar", "SAS transport file", (".xpt",)),
    ("spss", "columnar", "SPSS dataset", (".sav", ".zsav")),
    ("spss_portable", "columnar", "SPSS portable file", (".por",)),
    ("rdata", "columnar", "R data", (".rdata", ".rda")),
    ("rds", "columnar", "R single object", (".rds",)),
    # arrays
    ("npy", "array", "NumPy array", (".npy",)),
    ("npz", "array", "NumPy archive of arrays", (".npz",)),
    ("mat", "array", "MATLAB data", (".mat",)),
    ("hdf5", "array", "HDF5", (".h5", ".hdf5", ".hdf", ".he5")),
    ("netcdf", "array", "NetCDF", (".nc", ".nc4", ".cdf")),
    ("zarr", "array", "Zarr (zipped)", (".zarr",)),
    ("fits", "array", "FITS astronomy data", (".fits", ".fit", ".fts")),
    ("safetensors", "array", "safetensors tensors", (".safetensors",)),
    ("pt", "array", "PyTorch tensors", (".pt", ".pth")),
    ("onnx", "array", "ONNX model", (".onnx",)),
    ("tfrecord", "array", "TFRecord", (".tfrecord",)),
    ("edf", "array", "European Data Format signals", (".edf",)),
    # serialized Python
    ("pickle", "serialized", "Python pickle", (".pkl", ".pickle", ".p")),
    ("joblib", "serialized", "joblib dump", (".joblib",)),
    ("dill", "serialized", "dill pickle", (".dill",)),
    # databases
    ("sqlite", "database", "SQLite database", (".sqlite", ".sqlite3", ".db", ".db3", ".s3db")),
    ("duckdb", "database", "DuckDB database", (".duckdb",)),
    ("mdb", "database", "Microsoft Access database", (".mdb", ".accdb")),
    # images
    ("png", "image", "PNG image", (".png",)),
    ("jpeg", "image", "JPEG image", (".jpg", ".jpeg", ".jpe", ".jfif")),
    ("gif", "image", "GIF image", (".gif",)),
    ("bmp", "image", "Bitmap image", (".bmp", ".dib")),
    ("tiff", "image", "TIFF image", (".tif", ".tiff")),
    ("webp", "image", "WebP image", (".webp",)),
    ("ico", "image", "Icon", (".ico", ".cur")),
    ("icns", "image", "Apple icon", (".icns",)),
    ("ppm", "image", "Netpbm image", (".ppm", ".pgm", ".pbm", ".pnm")),
    ("tga", "image", "Targa image", (".tga",)),
    ("psd", "image", "Photoshop image", (".psd",)),
    ("jp2", "image", "JPEG 2000 image", (".jp2", ".j2k", ".jpf")),
    ("pcx", "image", "PCX image", (".pcx",)),
    ("dds", "image", "DirectDraw surface", (".dds",)),
    ("xbm", "image", "X bitmap", (".xbm",)),
    ("xpm", "image", "X pixmap", (".xpm",)),
    ("sgi", "image", "SGI image", (".sgi", ".rgb", ".rgba", ".bw")),
    ("qoi", "image", "QOI image", (".qoi",)),
    ("sun_raster", "image", "Sun raster image", (".ras", ".sun")),
    ("blp", "image", "Blizzard texture", (".blp",)),
    ("heic", "image", "HEIF/HEIC image", (".heic", ".heif")),
    ("avif", "image", "AVIF image", (".avif",)),
    ("svg", "image", "SVG vector image", (".svg",)),
    ("eps", "image", "Encapsulated PostScript", (".eps",)),
    ("raw_photo", "image", "Camera raw photo", (".cr2", ".nef", ".arw", ".dng", ".orf", ".rw2")),
    ("exr", "image", "OpenEXR image", (".exr",)),
    # audio
    ("wav", "audio", "WAV audio", (".wav", ".wave")),
    ("flac", "audio", "FLAC audio", (".flac",)),
    ("ogg", "audio", "Ogg audio", (".ogg", ".oga", ".opus")),
    ("mp3", "audio", "MP3 audio", (".mp3",)),
    ("aiff", "audio", "AIFF audio", (".aiff", ".aif", ".aifc")),
    ("au", "audio", "Sun audio", (".au", ".snd")),
    ("m4a", "audio", "AAC/M4A audio", (".m4a", ".aac")),
    ("wma", "audio", "Windows Media audio", (".wma",)),
    ("midi", "audio", "MIDI", (".mid", ".midi")),
    ("caf", "audio", "Core Audio file", (".caf",)),
    ("w64", "audio", "Sony Wave64 audio", (".w64",)),
    # video
    ("mp4", "video", "MP4 video", (".mp4", ".m4v")),
    ("mov", "video", "QuickTime video", (".mov", ".qt")),
    ("avi", "video", "AVI video", (".avi",)),
    ("mkv", "video", "Matroska video", (".mkv",)),
    ("webm", "video", "WebM video", (".webm",)),
    ("flv", "video", "Flash video", (".flv",)),
    ("wmv", "video", "Windows Media video", (".wmv", ".asf")),
    ("mpeg", "video", "MPEG video", (".mpg", ".mpeg", ".m2v")),
    ("mpegts", "video", "MPEG transport stream", (".ts", ".mts", ".m2ts")),
    ("3gp", "video", "3GPP video", (".3gp", ".3g2")),
    # code
    ("python", "code", "Python", (".py", ".pyw", ".pyi")),
    ("ipynb", "code", "Jupyter notebook", (".ipynb",)),
    ("r", "code", "R", (".r", ".rmd")),
    ("sql", "code", "SQL", (".sql",)),
    ("shell", "code", "Shell script", (".sh", ".bash", ".zsh", ".fish")),
    ("powershell", "code", "PowerShell", (".ps1", ".psm1")),
    ("batch", "code", "Windows batch", (".bat", ".cmd")),
    ("javascript", "code", "JavaScript", (".js", ".mjs", ".cjs", ".jsx")),
    ("typescript", "code", "TypeScript", (".tsx", ".cts")),
    ("html", "code", "HTML", (".html", ".htm", ".xhtml")),
    ("css", "code", "CSS", (".css", ".scss", ".sass", ".less")),
    ("c", "code", "C", (".c", ".h")),
    ("cpp", "code", "C++", (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx")),
    ("csharp", "code", "C#", (".cs",)),
    ("java", "code", "Java", (".java",)),
    ("kotlin", "code", "Kotlin", (".kt", ".kts")),
    ("scala", "code", "Scala", (".scala",)),
    ("go", "code", "Go", (".go",)),
    ("rust", "code", "Rust", (".rs",)),
    ("ruby", "code", "Ruby", (".rb",)),
    ("php", "code", "PHP", (".php",)),
    ("perl", "code", "Perl", (".pl", ".pm")),
    ("lua", "code", "Lua", (".lua",)),
    ("swift", "code", "Swift", (".swift",)),
    ("julia", "code", "Julia", (".jl",)),
    ("matlab_code", "code", "MATLAB/Octave script", (".m",)),
    ("haskell", "code", "Haskell", (".hs",)),
    ("elixir", "code", "Elixir", (".ex", ".exs")),
    ("erlang", "code", "Erlang", (".erl",)),
    ("clojure", "code", "Clojure", (".clj",)),
    ("dart", "code", "Dart", (".dart",)),
    ("fortran", "code", "Fortran", (".f", ".f90", ".f95")),
    ("asm", "code", "Assembly", (".asm", ".s")),
    ("vb", "code", "Visual Basic", (".vb", ".vbs")),
    ("makefile", "code", "Makefile", (".mk", ".make")),
    ("dockerfile", "code", "Dockerfile", (".dockerfile",)),
    ("tex", "code", "LaTeX", (".tex", ".sty", ".bib")),
    ("graphql", "code", "GraphQL", (".graphql", ".gql")),
    ("proto", "code", "Protocol Buffers schema", (".proto",)),
    ("stan", "code", "Stan model", (".stan",)),
    # documents
    ("pdf", "document", "PDF document", (".pdf",)),
    ("docx", "document", "Word document", (".docx", ".dotx")),
    ("doc", "document", "Word 97-2003 document", (".doc",)),
    ("odt", "document", "OpenDocument text", (".odt",)),
    ("rtf", "document", "Rich Text Format", (".rtf",)),
    ("pptx", "document", "PowerPoint presentation", (".pptx",)),
    ("ppt", "document", "PowerPoint 97-2003 presentation", (".ppt",)),
    ("odp", "document", "OpenDocument presentation", (".odp",)),
    ("epub", "document", "EPUB e-book", (".epub",)),
    ("msg", "document", "Outlook message", (".msg",)),
    ("eml", "document", "E-mail message", (".eml",)),
    ("pages", "document", "Apple Pages document", (".pages",)),
    ("ps", "document", "PostScript", (".ps",)),
    ("djvu", "document", "DjVu document", (".djvu",)),
    # geospatial
    ("geojson", "geospatial", "GeoJSON", (".geojson",)),
    ("topojson", "geospatial", "TopoJSON", (".topojson",)),
    ("shapefile", "geospatial", "ESRI shapefile geometry", (".shp",)),
    ("shapefile_index", "geospatial", "ESRI shapefile index", (".shx",)),
    ("prj", "geospatial", "Projection definition", (".prj",)),
    ("kml", "geospatial", "KML", (".kml",)),
    ("kmz", "geospatial", "Zipped KML", (".kmz",)),
    ("gpx", "geospatial", "GPS exchange", (".gpx",)),
    ("gpkg", "geospatial", "GeoPackage", (".gpkg",)),
    ("geotiff", "geospatial", "GeoTIFF raster", (".geotiff", ".gtiff")),
    ("gml", "geospatial", "Geography Markup Language", (".gml",)),
    ("osm", "geospatial", "OpenStreetMap data", (".osm", ".pbf")),
    ("wkt", "geospatial", "Well-known text geometry", (".wkt",)),
    ("las", "geospatial", "LiDAR point cloud", (".las", ".laz")),
    # archives
    ("zip", "archive", "ZIP archive", (".zip",)),
    ("tar", "archive", "Tar archive", (".tar",)),
    ("gzip", "archive", "Gzip-compressed file", (".gz", ".tgz")),
    ("bzip2", "archive", "Bzip2-compressed file", (".bz2", ".tbz2")),
    ("xz", "archive", "XZ-compressed file", (".xz", ".txz")),
    ("lzma", "archive", "LZMA-compressed file", (".lzma",)),
    ("zstd", "archive", "Zstandard-compressed file", (".zst",)),
    ("7z", "archive", "7-Zip archive", (".7z",)),
    ("rar", "archive", "RAR archive", (".rar",)),
    ("jar", "archive", "Java archive", (".jar", ".war")),
    ("whl", "archive", "Python wheel", (".whl",)),
    ("lz4", "archive", "LZ4-compressed file", (".lz4",)),
    ("cab", "archive", "Cabinet archive", (".cab",)),
    ("iso", "archive", "Disc image", (".iso",)),
    # text
    ("text", "text", "Plain text", (".txt", ".text", ".asc")),
    ("markdown", "text", "Markdown", (".md", ".markdown")),
    ("rst", "text", "reStructuredText", (".rst",)),
    ("log", "text", "Log file", (".log", ".out")),
    ("diff", "text", "Patch", (".diff", ".patch")),
    ("srt", "text", "Subtitles", (".srt", ".vtt")),
    ("ics", "text", "Calendar", (".ics",)),
    ("vcf", "text", "vCard or variant calls", (".vcf",)),
    ("fasta", "text", "FASTA sequences", (".fasta", ".fa", ".fna", ".faa")),
    ("fastq", "text", "FASTQ reads", (".fastq", ".fq")),
    ("pdb", "text", "Protein Data Bank structure", (".pdb",)),
    ("gff", "text", "Genome feature table", (".gff", ".gtf", ".bed")),
    ("sdf", "text", "Chemical structure data", (".sdf", ".mol")),
    # other binary
    ("binary", "binary", "Binary data", (".bin", ".dat", ".raw")),
)

FILE_TYPES: dict[str, FileType] = {}
"""Every known extension (lower case, with the dot) -> its FileType."""
TYPES_BY_NAME: dict[str, FileType] = {}
"""Every type name -> its FileType with the canonical extension."""

for _type, _category, _description, _extensions in _TABLE:
    assert _category in CATEGORIES, _category
    for _ext in _extensions:
        assert _ext not in FILE_TYPES, f"{_ext} listed twice"
        FILE_TYPES[_ext] = FileType(_ext, _type, _category, _description)
    TYPES_BY_NAME[_type] = FILE_TYPES[_extensions[0]]

TEXT_FILE = TYPES_BY_NAME["text"]
BINARY_FILE = TYPES_BY_NAME["binary"]

# Magic bytes: (type reported when seen, offset, signature). Several types share a container
# (xlsx, docx, npz... are ZIP files), listed in _CONTAINERS so that they are not reported as ZIP.
_SIGNATURES: tuple[tuple[str, int, bytes], ...] = (
    ("zip", 0, b"PK\x03\x04"),
    ("zip", 0, b"PK\x05\x06"),
    ("gzip", 0, b"\x1f\x8b"),
    ("bzip2", 0, b"BZh"),
    ("xz", 0, b"\xfd7zXZ\x00"),
    ("zstd", 0, b"\x28\xb5\x2f\xfd"),
    ("7z", 0, b"7z\xbc\xaf\x27\x1c"),
    ("rar", 0, b"Rar!\x1a\x07"),
    ("tar", 257, b"ustar"),
    ("pdf", 0, b"%PDF-"),
    ("png", 0, b"\x89PNG\r\n\x1a\n"),
    ("jpeg", 0, b"\xff\xd8\xff"),
    ("gif", 0, b"GIF87a"),
    ("gif", 0, b"GIF89a"),
    ("bmp", 0, b"BM"),
    ("tiff", 0, b"II*\x00"),
    ("tiff", 0, b"MM\x00*"),
    ("webp", 8, b"WEBP"),
    ("wav", 8, b"WAVE"),
    ("avi", 8, b"AVI "),
    ("flac", 0, b"fLaC"),
    ("ogg", 0, b"OggS"),
    ("mp3", 0, b"ID3"),
    ("aiff", 8, b"AIFF"),
    ("aiff", 8, b"AIFC"),
    ("mp4", 4, b"ftyp"),
    ("mkv", 0, b"\x1a\x45\xdf\xa3"),
    ("parquet", 0, b"PAR1"),
    ("feather", 0, b"ARROW1"),
    ("orc", 0, b"ORC"),
    ("avro", 0, b"Obj\x01"),
    ("sqlite", 0, b"SQLite format 3\x00"),
    ("hdf5", 0, b"\x89HDF\r\n\x1a\n"),
    ("npy", 0, b"\x93NUMPY"),
    ("mat", 0, b"MATLAB 5.0 MAT-file"),
    ("ole2", 0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ("sas", 0, b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc2\xea\x81\x60"),
    ("sas_catalog", 0, b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc2\xea\x81\x63"),
    ("qoi", 0, b"qoif"),
    ("sun_raster", 0, b"\x59\xa6\x6a\x95"),
    ("blp", 0, b"BLP1"),
    ("blp", 0, b"BLP2"),
    ("fits", 0, b"SIMPLE  ="),
    ("psd", 0, b"8BPS"),
    ("ico", 0, b"\x00\x00\x01\x00"),
    ("midi", 0, b"MThd"),
    ("rtf", 0, b"{\\rtf"),
)
# Signature seen -> the types whose files legitimately carry it.
_CONTAINERS: dict[str, frozenset[str]] = {
    "zip": frozenset(
        "xlsx xlsm xltx xlsb ods numbers docx odt pptx odp epub "
        "pages jar whl kmz npz zarr ipynb joblib pt mat".split()
    ),
    "ole2": frozenset({"xls", "doc", "ppt", "msg", "mdb"}),
    "hdf5": frozenset({"mat", "netcdf"}),
    "gzip": frozenset({"tar", "joblib", "rds", "rdata"}),
    "bzip2": frozenset({"rds", "rdata", "joblib"}),
    "xz": frozenset({"rds", "rdata", "joblib"}),
    "mp4": frozenset({"mov", "m4a", "3gp", "heic", "avif", "jp2"}),
    "mkv": frozenset({"webm"}),
    "wav": frozenset({"wav", "w64"}),
    "tiff": frozenset({"geotiff", "raw_photo"}),
    "sqlite": frozenset({"gpkg", "duckdb"}),
    "ogg": frozenset({"ogg"}),
}
# The OLE2 container alone says little: report it as a document.
_SIGNATURE_TYPE = {"ole2": "doc"}
# Short signatures that ordinary text can start with.
_WEAK_SIGNATURES = frozenset({"mp3", "bmp", "orc", "rtf", "fits", "midi", "gzip"})
_TEXT_CATEGORIES = frozenset({"tabular", "structured", "text", "code", "geospatial"})
HEAD_BYTES = 512
"""How many leading bytes detect_type needs to see."""


def file_type_for(filename: str) -> FileType | None:
    """The table's entry for a file name's extension, or None."""
    return FILE_TYPES.get(os.path.splitext(filename)[1].lower())


def is_supported(filename: str) -> bool:
    return file_type_for(filename) is not None


def detect_type(filename: str, head: bytes) -> FileType:
    """The type of a file from its name, checked against its first bytes (HEAD_BYTES suffice).

    The extension decides, unless the bytes carry another format's signature (a .csv that is
    really a ZIP is reported as ZIP), or a format with a known signature turns out to be plain
    text. Unknown extensions are named from the signature, else as text or binary data.
    """
    by_name = file_type_for(filename)
    signature = _signature_of(head)
    if by_name is not None:
        if signature is None:
            if _has_known_signature(by_name.type) and head and _looks_like_text(head):
                return TEXT_FILE
            return by_name
        if signature == by_name.type or by_name.type in _CONTAINERS.get(signature, ()):
            return by_name
        if (
            signature in _WEAK_SIGNATURES
            and by_name.category in _TEXT_CATEGORIES
            and _looks_like_text(head)
        ):
            return by_name  # e.g. "ID3" or "BM" at the start of a text file is just text
        return TYPES_BY_NAME[_SIGNATURE_TYPE.get(signature, signature)]
    if signature is not None:
        return TYPES_BY_NAME[_SIGNATURE_TYPE.get(signature, signature)]
    return TEXT_FILE if _looks_like_text(head) else BINARY_FILE


def loader_table() -> dict:
    """What the sandbox's loader needs from this table: extension -> type, type -> [category,
    description]. The image keeps a copy in sandbox-image/runtime/sandbox_types.json (written by
    `python -m app.files.types`; tests/unit/test_file_types.py checks that the two agree), to name
    what it finds inside compressed files and archives. Rewrite the copy with
    `python -c "import app.files.types as t; t.write_loader_table()"`."""
    return {
        "extensions": {ext: t.type for ext, t in FILE_TYPES.items()},
        "types": {name: [t.category, t.description] for name, t in TYPES_BY_NAME.items()},
    }


def write_loader_table(path: str = "sandbox-image/runtime/sandbox_types.json") -> None:
    import json

    with open(path, "w") as fh:
        json.dump(loader_table(), fh, indent=0, sort_keys=True)
        fh.write("\n")


def describe_types() -> str:
    """A compact listing by category, for help texts and the model's prompt."""
    by_category: dict[str, list[str]] = {}
    for ext, file_type in FILE_TYPES.items():
        by_category.setdefault(file_type.category, []).append(ext)
    return "\n".join(
        f"{CATEGORIES[category]}: {' '.join(exts)}" for category, exts in by_category.items()
    )


def _signature_of(head: bytes) -> str | None:
    for type_name, offset, magic in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            if type_name == "bmp" and len(head) < 14:
                continue  # "BM" alone is too common a start for text
            return type_name
    return None


_WITH_SIGNATURE = frozenset(name for name, _, _ in _SIGNATURES)


def _has_known_signature(type_name: str) -> bool:
    return type_name in _WITH_SIGNATURE


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return head.startswith((b"\xff\xfe", b"\xfe\xff"))  # UTF-16 with a byte-order mark
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True
