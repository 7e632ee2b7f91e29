"""What a file is, from its bytes: formats by signature, text formats, delimiters, and how much
memory this run has left to read it into (text encodings: sandbox_encodings).

Used by load_file (sandbox_files) inside the container. Standard library only, and nothing heavy
at import: the runner imports it before the timer starts, and the unit tests run it on the host.
"""

from __future__ import annotations

import json
import os
import re
import struct

from sandbox_encodings import EncodingGuess, detect_encoding, looks_like_text  # noqa: F401

HEAD_BYTES = 8192
TAIL_BYTES = 64
_TYPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_types.json")
_table: dict | None = None


# The host's type table (app/files/types.py), copied into the image as sandbox_types.json: it
# names what is found inside compressed files and archives, where the host could not look.


def _types() -> dict:
    global _table
    if _table is None:
        with open(_TYPES_FILE) as fh:
            _table = json.load(fh)
    return _table


def type_for_name(name: str) -> str | None:
    """The table's type for a file name's extension, or None."""
    return _types()["extensions"].get(os.path.splitext(name)[1].lower())


def category_of(type_name: str) -> str:
    info = _types()["types"].get(type_name)
    return info[0] if info else _CONTENT_KINDS.get(type_name, ("binary", ""))[0]


def describe(type_name: str) -> str:
    """'Apache Parquet', 'IDL save file'...: how an error message names a type."""
    info = _types()["types"].get(type_name)
    if info:
        return info[1]
    return _CONTENT_KINDS.get(type_name, ("", type_name))[1] or type_name


# Formats the loader tells apart by content that have no type (no extension) of their own in the
# host's table: kind -> (category, description).
_CONTENT_KINDS = {
    "idl_save": ("array", "IDL save file"),
    "netcdf3": ("array", "NetCDF classic (version 3)"),
    "netcdf_cdf5": ("array", "NetCDF 64-bit data (CDF-5)"),
    "nasa_cdf": ("array", "NASA Common Data Format"),
    "hdf4": ("array", "HDF4"),
    "ole2": ("document", "Microsoft compound document"),
    "encrypted_office": ("document", "password-protected Office file"),
    "html": ("code", "HTML"),
    "image_by_content": ("image", "image"),
}


# Signatures. Each returns a type name of the host's table or a kind above.


def sniff(head: bytes, tail: bytes = b"", size: int = 0) -> str | None:
    """The format the first bytes (HEAD_BYTES suffice) and last bytes declare, or None."""
    for kind, offset, magic in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return _refine(kind, head, tail, size)
    for offset in (512, 1024, 2048, 4096):  # HDF5 allows a user block before its signature
        if head[offset : offset + 8] == b"\x89HDF\r\n\x1a\n":
            return "hdf5"
    if head[:4] == b"\xff\xff\xff\xff" and len(head) >= 12:
        (length,) = struct.unpack("<i", head[4:8])
        if length >= 8 and (not size or length < size):
            return "arrow_stream"  # an Arrow IPC stream opens with a continuation marker
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and tail[-1:] == b".":
        return "pickle"  # protocol 2+ pickles start with PROTO n and end with STOP
    if _stata_binary(head):
        return "stata"
    return None


def _refine(kind: str, head: bytes, tail: bytes, size: int) -> str | None:
    if kind == "orc" and tail and not tail[:-1].endswith(b"ORC"):
        return None  # ORC files also end with their magic, in the postscript
    if kind == "bmp" and len(head) >= 14:
        (declared,) = struct.unpack("<I", head[2:6])
        if size and declared not in (size, 0) and abs(declared - size) > 4096:
            return None
    if kind == "ole2":
        return _ole2_kind(head)
    if kind == "sgi" and (len(head) < 4 or head[2] > 1 or head[3] not in (1, 2)):
        return None
    if kind == "ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "heic"
        if brand in (b"M4A ", b"M4B "):
            return "m4a"
        if brand in (b"qt  ",):
            return "mov"
        if brand[:3] == b"3gp":
            return "3gp"
        return "mp4"
    if kind == "riff":
        return {b"WAVE": "wav", b"AVI ": "avi", b"WEBP": "webp"}.get(head[8:12])
    if kind == "form":
        return "aiff" if head[8:12] in (b"AIFF", b"AIFC") else None
    return kind


def _stata_binary(head: bytes) -> bool:
    # Stata 102-116: release byte, byte order (1 or 2), file type 1, then a zero byte.
    return (
        len(head) >= 4
        and 102 <= head[0] <= 115
        and head[1] in (1, 2)
        and head[2] == 1
        and head[3] == 0
    )


def _ole2_kind(head: bytes) -> str:
    """Which Office file an OLE2 compound document is, from its first directory sector's names."""
    try:
        shift, first_dir = struct.unpack("<H", head[30:32])[0], struct.unpack("<i", head[48:52])[0]
    except struct.error:
        return "ole2"
    sector = 1 << shift
    start = (first_dir + 1) * sector
    names = set()
    block = head[start : start + min(sector, 4096)]
    for i in range(0, len(block) - 127, 128):
        length = struct.unpack("<H", block[i + 64 : i + 66])[0]
        if 2 <= length <= 64:
            names.add(block[i : i + length - 2].decode("utf-16-le", "replace"))
    if "EncryptedPackage" in names:
        return "encrypted_office"  # a password-protected xlsx/docx/pptx
    if names & {"Workbook", "Book"}:
        return "xls"
    if "WordDocument" in names:
        return "doc"
    if "PowerPoint Document" in names:
        return "ppt"
    if any(name.startswith("__substg1.0_") for name in names):
        return "msg"
    return "ole2"


_SAS_MAGIC = b"\x00" * 12 + b"\xc2\xea\x81"
_SIGNATURES: tuple[tuple[str, int, bytes], ...] = (
    ("parquet", 0, b"PAR1"),
    ("feather", 0, b"ARROW1"),
    ("feather", 0, b"FEA1"),
    ("orc", 0, b"ORC"),
    ("sqlite", 0, b"SQLite format 3\x00"),
    ("hdf5", 0, b"\x89HDF\r\n\x1a\n"),
    ("hdf4", 0, b"\x0e\x03\x13\x01"),
    ("netcdf3", 0, b"CDF\x01"),
    ("netcdf3", 0, b"CDF\x02"),
    ("netcdf_cdf5", 0, b"CDF\x05"),
    ("nasa_cdf", 0, b"\xcd\xf3\x00\x01"),
    ("idl_save", 0, b"SR\x00\x04"),
    ("idl_save", 0, b"SR\x00\x06"),
    ("spss", 0, b"$FL2"),
    ("spss", 0, b"$FL3"),
    ("sas", 0, _SAS_MAGIC + b"\x60"),
    ("sas_catalog", 0, _SAS_MAGIC + b"\x63"),
    ("xport", 0, b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"),
    ("xport", 0, b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!"),
    ("stata", 0, b"<stata_dta>"),
    ("npy", 0, b"\x93NUMPY"),
    ("mat", 0, b"MATLAB 5.0 MAT-file"),
    ("mat", 0, b"MATLAB 7.3 MAT-file"),
    ("avro", 0, b"Obj\x01"),
    ("zip", 0, b"PK\x03\x04"),
    ("zip", 0, b"PK\x05\x06"),
    ("gzip", 0, b"\x1f\x8b\x08"),
    ("bzip2", 0, b"BZh"),
    ("xz", 0, b"\xfd7zXZ\x00"),
    ("zstd", 0, b"\x28\xb5\x2f\xfd"),
    ("lz4", 0, b"\x04\x22\x4d\x18"),
    ("7z", 0, b"7z\xbc\xaf\x27\x1c"),
    ("rar", 0, b"Rar!\x1a\x07"),
    ("tar", 257, b"ustar"),
    ("ole2", 0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ("pdf", 0, b"%PDF-"),
    ("png", 0, b"\x89PNG\r\n\x1a\n"),
    ("jpeg", 0, b"\xff\xd8\xff"),
    ("gif", 0, b"GIF87a"),
    ("gif", 0, b"GIF89a"),
    ("tiff", 0, b"II*\x00"),
    ("tiff", 0, b"MM\x00*"),
    ("tiff", 0, b"II+\x00"),  # BigTIFF
    ("jp2", 0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
    ("jp2", 0, b"\xff\x4f\xff\x51"),
    ("psd", 0, b"8BPS"),
    ("qoi", 0, b"qoif"),
    ("sun_raster", 0, b"\x59\xa6\x6a\x95"),
    ("blp", 0, b"BLP1"),
    ("blp", 0, b"BLP2"),
    ("dds", 0, b"DDS |"),
    ("icns", 0, b"icns"),
    ("sgi", 0, b"\x01\xda"),
    ("fits", 0, b"SIMPLE  =                    T"),
    ("xpm", 0, b"/* XPM */"),
    ("exr", 0, b"\x76\x2f\x31\x01"),
    ("bmp", 0, b"BM"),
    ("riff", 0, b"RIFF"),
    ("form", 0, b"FORM"),
    ("flac", 0, b"fLaC"),
    ("ogg", 0, b"OggS"),
    ("au", 0, b".snd"),
    ("caf", 0, b"caff"),
    ("mp3", 0, b"ID3"),
    ("midi", 0, b"MThd"),
    ("ftyp", 4, b"ftyp"),
    ("mkv", 0, b"\x1a\x45\xdf\xa3"),
    ("rtf", 0, b"{\\rtf"),
)


def gzip_original_name(head: bytes) -> str | None:
    """The file name a gzip header records (FNAME), when there is one."""
    if head[:3] != b"\x1f\x8b\x08" or len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA
        (extra,) = struct.unpack("<H", head[10:12])
        pos = 12 + extra
    end = head.find(b"\x00", pos)
    if end <= pos:
        return None
    return os.path.basename(head[pos:end].decode("latin-1"))


def sniff_text(text: str) -> str | None:
    """Formats written as text, from the start of a decoded file: arff, json, jsonl, xml, html,
    xpm, xbm, or csv/tsv when the lines are clearly delimited."""
    body = text.lstrip("\ufeff \t\r\n")
    lower = body[:4096].lower()
    if body.startswith("/* XPM */") or body.startswith("! XPM2"):
        return "xpm"
    if re.match(r"#define \w+_width \d+", body):
        return "xbm"
    if re.match(r"(\s*%[^\n]*\n)*\s*@relation\b", lower):
        return "arff"
    if lower.startswith(("<!doctype html", "<html")):
        return "html"
    if lower.startswith("<?xml") or lower.startswith("<"):
        return "svg" if "<svg" in lower[:2048] else "xml"
    if body.startswith(("{", "[")):
        lines = [line for line in body[:65536].splitlines() if line.strip()]
        if len(lines) > 1 and all(
            line.lstrip().startswith("{") and line.rstrip().endswith("}")
            for line in lines[:-1][:50]
        ):
            return "jsonl"
        return "json"
    if re.match(r"P[123]\s", body):
        return "ppm"  # ASCII netpbm
    lines = body[:65536].splitlines()
    if len(body) > 65536:
        lines = lines[:-1]  # cut by the sample's end
    lines = [line for line in lines if line.strip()]
    if len(lines) >= 3:  # fewer lines tell a table from prose too poorly
        delimiter = sniff_delimiter("\n".join(lines), None)
        if delimiter is not None:
            return "tsv" if delimiter == "\t" else "csv"
    return None


# Delimited text


def sniff_delimiter(sample: str, default: str | None, complete: bool = True) -> str | None:
    """The delimiter of a table's text sample (",", ";", "\\t", "|", or r"\\s+" for columns lined
    up with spaces), or `default` when the sample does not look like a table."""
    import csv

    lines = sample.splitlines()
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # drop a line cut by the sample's end
    lines = [line for line in lines if line.strip()][:200]
    if not lines:
        return default
    try:
        found = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        found = None
    if found is not None and _consistent(lines, found):
        return found
    for candidate in (",", "\t", ";", "|"):
        if _consistent(lines, candidate):
            return candidate
    if len(lines) > 2:
        counts = [len(line.split()) for line in lines]
        tokens = [token for line in lines[1:] for token in line.split()]
        numbers = sum(is_number(token) for token in tokens)
        if min(counts) >= 2 and _mostly_equal(counts) and numbers >= 0.5 * len(tokens):
            return r"\s+"  # columns lined up with spaces: numeric tables (.dat files)
    return found if found is not None else default


def is_number(token: str) -> bool:
    try:
        float(token.replace("D", "E").replace("d", "e"))  # Fortran writes 1.0D+03
    except ValueError:
        return False
    return True


def _consistent(lines: list[str], delimiter: str) -> bool:
    import csv

    counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
    return len(counts) > 0 and max(counts) > 1 and _mostly_equal(counts[1:] or counts)


def _mostly_equal(counts: list[int]) -> bool:
    if not counts:
        return False
    most = max(set(counts), key=counts.count)
    return most > 1 and counts.count(most) >= 0.8 * len(counts)


def header_row(sample: str, delimiter: str) -> int:
    """How many preamble lines (titles, notes) come before the table's header: the first line from
    which the rows have the table's usual number of fields."""
    import csv

    lines = sample.splitlines()[:500]
    if len(lines) < 3:
        return 0
    if delimiter == r"\s+":
        counts = [len(line.split()) for line in lines]
    else:
        counts = [
            len(row) if any(cell.strip() for cell in row) else 0
            for row in csv.reader(lines, delimiter=delimiter)
        ]
    body = [c for c in counts[len(counts) // 3 :] if c]
    if not body:
        return 0
    usual = max(set(body), key=body.count)
    for start, count in enumerate(counts):
        if count == usual and all(c in (usual, 0) for c in counts[start : start + 5]):
            return start
    return 0


# Memory: what this run may still allocate, from its cgroup (v2, else v1), so that a file that
# declares more than that is refused with a message instead of killing the run.


def memory_budget() -> tuple[int | None, int | None]:
    """(bytes still free, the limit), None where unknown. Page cache counts as free: the kernel
    reclaims it before it kills."""
    limit = usage = reclaimable = None
    for max_file, current_file, stat_file, keys in (
        (
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory.current",
            "/sys/fs/cgroup/memory.stat",
            ("active_file", "inactive_file"),
        ),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "/sys/fs/cgroup/memory/memory.stat",
            ("total_active_file", "total_inactive_file"),
        ),
    ):
        limit = _read_int(max_file)
        if limit is not None:
            usage = _read_int(current_file)
            stats = _read_stats(stat_file)
            reclaimable = sum(stats.get(key, 0) for key in keys)
            break
    if limit is not None and limit >= 1 << 60:
        limit = None  # no limit set
    free = None
    if limit is not None and usage is not None:
        free = max(0, limit - usage + (reclaimable or 0))
    available = _meminfo_available()
    if available is not None:
        free = available if free is None else min(free, available)
    return free, limit


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    if text == "max":
        return 1 << 62
    try:
        return int(text)
    except ValueError:
        return None


def _read_stats(path: str) -> dict[str, int]:
    stats = {}
    try:
        with open(path) as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if value.strip().isdigit():
                    stats[key] = int(value)
    except OSError:
        pass
    return stats


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
