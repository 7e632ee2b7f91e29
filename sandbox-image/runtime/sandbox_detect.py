"""What a file is, from its bytes: formats by signature, text encodings, delimiters, and how much
memory this run has left to read it into.

Used by load_file (sandbox_files) inside the container. Standard library only, and nothing heavy
at import: the runner imports it before the timer starts, and the unit tests run it on the host.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import struct
from typing import NamedTuple

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
        if 8 <= length and (not size or length < size):
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
    return len(head) >= 4 and 102 <= head[0] <= 115 and head[1] in (1, 2) and head[2] == 1 \
        and head[3] == 0


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
        if len(lines) > 1 and all(line.lstrip().startswith("{") and line.rstrip().endswith("}")
                                  for line in lines[:-1][:50]):
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
    lines = sample.splitlines()[:500]
    if len(lines) < 3:
        return 0
    if delimiter == r"\s+":
        counts = [len(line.split()) for line in lines]
    else:
        counts = [len(row) if any(cell.strip() for cell in row) else 0
                  for row in csv.reader(lines, delimiter=delimiter)]
    body = [c for c in counts[len(counts) // 3 :] if c]
    if not body:
        return 0
    usual = max(set(body), key=body.count)
    for start, count in enumerate(counts):
        if count == usual and all(c in (usual, 0) for c in counts[start : start + 5]):
            return start
    return 0


# Text encodings: the whole file is checked, in chunks, at C speed; only a bounded sample of the
# non-ASCII bytes, spread over the file, is scored for plausibility in Python.

ENCODING_CHUNK = 1 << 20
_SNIPPETS_PER_CHUNK = 24
_MAX_SNIPPETS = 3000
_RADIUS = 24
_HIGH_RUN = re.compile(rb"(?<![\x80-\xff])[\x80-\xff]+")
_HIGH_MARKS = bytes.maketrans(bytes(range(256)), b"0" * 128 + b"1" * 128)
_ASCII = bytes(range(128))

# Single-byte code pages, with a small prior that breaks near-ties toward the commoner one.
SINGLE_BYTE = (
    ("cp1252", 0.06), ("iso-8859-15", 0.02), ("mac_roman", 0.0), ("cp1250", 0.01),
    ("iso-8859-2", 0.0), ("cp1251", 0.02), ("koi8_r", 0.0), ("iso-8859-5", -0.02),
    ("cp866", -0.01), ("cp1253", 0.0), ("iso-8859-7", 0.01), ("cp1254", -0.01),
    ("cp1257", -0.02), ("cp1255", 0.0), ("iso-8859-8", -0.02), ("cp1256", 0.0),
    ("cp874", -0.02), ("cp437", -0.03), ("cp850", -0.02), ("latin-1", -0.05),
)
MULTI_BYTE = ("cp932", "euc_jp", "gb18030", "big5", "cp949")


class EncodingGuess(NamedTuple):
    encoding: str
    errors: str  # "strict", or "replace" for UTF-8 with a few invalid bytes
    note: str | None  # what to tell the user, None for UTF-8 and byte-order marks
    size: int  # bytes read


class _Props(NamedTuple):
    kind: int
    script: str
    case: int  # 0 none, 1 lower, 2 upper


_UNDEFINED, _CONTROL, _LETTER, _RARE, _MARK, _SPACE, _APOS, _SYMBOL, _ODD, _ASCII_OTHER = range(10)
_LETTERS = (_LETTER, _RARE)
# Punctuation and symbols that real text uses; the rest of a code page's upper half is rare.
_COMMON = set("\u00a0«»–—‘’‚“”„•…¿¡·°±×÷§©®™€£¥¢²³¹¼½¾µ¶¦¬¨´¸¯№")
_APOSTROPHES = set("’‘´ʼ")
# Letters that exist in a code page but hardly ever in text: seeing many of them means the
# encoding is probably another one that puts common letters on the same bytes.
_RARE_LETTERS = set("ƒˆ˜ˇ˘˙˚˛˝ªºðþÐÞﬁﬂĸ")
_MARK_SCRIPTS = {"HEBREW", "ARABIC", "THAI"}
_props_cache: dict[str, list[_Props]] = {}


def _props(encoding: str) -> list[_Props]:
    cached = _props_cache.get(encoding)
    if cached is not None:
        return cached
    import unicodedata

    table = []
    for byte in range(256):
        try:
            char = bytes([byte]).decode(encoding)
        except UnicodeDecodeError:
            table.append(_Props(_UNDEFINED, "", 0))
            continue
        case = 1 if char.islower() else 2 if char.isupper() else 0
        category = unicodedata.category(char)
        script = unicodedata.name(char, "").split(" ")[0]
        if byte < 128:
            kind = _LETTER if char.isalpha() else _SPACE if char.isspace() else _ASCII_OTHER
            script = "LATIN" if char.isalpha() else ""
        elif category == "Cc":
            kind = _CONTROL
        elif category[0] == "L":
            kind = _RARE if char in _RARE_LETTERS else _LETTER
        elif category[0] == "M":
            kind = _MARK
        elif category == "Zs":
            kind = _SPACE
        elif char in _APOSTROPHES:
            kind = _APOS
        elif char in _COMMON:
            kind = _SYMBOL
            script = "CURRENCY" if category == "Sc" else ""
        else:
            kind = _ODD
        table.append(_Props(kind, script, case))
    _props_cache[encoding] = table
    return table


# The accented letters of the languages written in Latin script: real text draws its accented
# letters from one or two of these sets, a wrong code page from a scatter of them.
_LATIN_LANGUAGES = tuple(set(letters) for letters in (
    "éèêàâçôûùîïëÿœæ", "äöüß", "áéíóúñü", "áâãàçéêíóôõú", "àèéìòù", "æøå", "äöå", "áéíóúýþðæö",
    "ëïéèö", "àèéíïòóúç", "áčďéěíňóřšťúůýž", "áäčďéíĺľňóôŕšťúýž", "ąćęłńóśźż", "áéíóöőúüű",
    "ăâîșțşţ", "čćđšž", "çğıöşüi̇", "äöõüšž", "ąčęėįšųūž", "āčēģīķļņšūž", "âêîôûŵŷ",
))


def _single_byte_score(encoding: str, snippets: list[tuple[bytes, int]]) -> float:
    """Mean plausibility of the characters the sampled non-ASCII bytes decode to: about 1 for
    letters that fit their neighbours, negative for controls and oddities; less when the
    accented letters fit no one language, or a cased script never changes case."""
    props = _props(encoding)
    total, count = 0.0, 0
    accented: dict[int, int] = {}
    cases = [0, 0, 0]
    for snippet, _ in snippets:
        last = len(snippet) - 1
        for i, byte in enumerate(snippet):
            if byte < 128:
                continue
            p = props[byte]
            before = props[snippet[i - 1]] if i else props[32]
            after = props[snippet[i + 1]] if i < last else props[32]
            count += 1
            if p.kind == _UNDEFINED:
                total -= 10
            elif p.kind == _CONTROL:
                total -= 6
            elif p.kind in _LETTERS:
                score = 1.0 if p.kind == _LETTER else 0.1
                if p.script != "LATIN":
                    cases[p.case] += 1
                if before.kind not in _LETTERS and after.kind not in _LETTERS:
                    # A letter standing alone: a one-letter word at best; alone in its script
                    # among Latin text (the "Ј" cp1251 makes of a "£"), hardly ever.
                    alone = p.script != "LATIN" and not _same_script(props, snippet, i, p.script)
                    score = min(score, 0.2 if alone else 0.5)
                if before.kind in _LETTERS:
                    if before.script != p.script:
                        score -= 1.5
                    elif before.case == 1 and p.case == 2:
                        score -= 1.5
                if after.kind in _LETTERS:
                    if after.script != p.script:
                        score -= 1.5
                    elif p.case == 1 and after.case == 2:
                        score -= 0.5
                if p.script == "LATIN":
                    accented[byte] = accented.get(byte, 0) + 1
                    if i and i < last and snippet[i - 1] >= 128 and snippet[i + 1] >= 128 \
                            and before.script == "LATIN" and after.script == "LATIN":
                        score -= 1.0  # three accented Latin letters in a row: another script
                total += score
            elif p.kind == _MARK:
                total += 0.5 if p.script in _MARK_SCRIPTS and before.kind in _LETTERS else -2.0
            elif p.kind == _SPACE:
                total += 0.3
            elif p.kind == _APOS:
                total += 0.5
            elif p.kind == _SYMBOL:
                inside = before.kind in _LETTERS and after.kind in _LETTERS
                money = p.script == "CURRENCY" and (_digit(snippet, i - 1)
                                                    or _digit(snippet, i + 1))
                total += -1.5 if inside else 1.0 if money else 0.6
            else:
                inside = before.kind in _LETTERS and after.kind in _LETTERS
                total += -2.0 if inside else -1.0
    if not count:
        return 0.0
    score = total / count
    latin = sum(accented.values())
    if latin >= 3:
        letters: dict[str, int] = {}
        for byte, seen in accented.items():
            letter = bytes([byte]).decode(encoding).lower()
            letters[letter] = letters.get(letter, 0) + seen
        covered = max(sum(n for letter, n in letters.items() if letter in language)
                      for language in _LATIN_LANGUAGES)
        score -= 0.6 * (1 - covered / latin) * latin / count
    if cases[1] + cases[2] >= 20 and (not cases[1] or not cases[2]):
        score -= 0.3  # Cyrillic or Greek in one case only: likely an uncased script, misread
    return score


def _same_script(props: list, snippet: bytes, at: int, script: str) -> bool:
    return any(byte >= 128 and index != at and props[byte].kind in _LETTERS
               and props[byte].script == script for index, byte in enumerate(snippet))


def _digit(snippet: bytes, index: int) -> bool:
    return 0 <= index < len(snippet) and 48 <= snippet[index] <= 57


def _common_cjk(encoding: str, char: str, raw: bytes) -> bool:
    code = ord(char)
    if encoding in ("cp932", "euc_jp"):
        if 0x3040 <= code <= 0x30FF or 0x3000 <= code <= 0x303F or 0xFF01 <= code <= 0xFF5E:
            return True
        try:
            lead = char.encode("cp932")[0]
        except UnicodeEncodeError:
            return False
        return 0x88 <= lead <= 0x9F
    if encoding == "cp949":
        return 0xAC00 <= code <= 0xD7A3 or 0x3000 <= code <= 0x303F or 0xFF01 <= code <= 0xFF5E
    target, low, high = ("gb2312", 0xB0, 0xD7) if encoding == "gb18030" else ("big5", 0xA4, 0xC6)
    try:
        lead = char.encode(target)[0]
    except UnicodeEncodeError:
        return False
    return low <= lead <= high or 0xA1 <= lead <= 0xA3


def _multi_byte_score(encoding: str, snippets: list[tuple[bytes, int]]) -> float:
    """Like _single_byte_score for double-byte encodings: common characters of the language
    score 1. Two tells tell apart Chinese, Japanese and Korean text, which decode validly in
    each other's encodings: Big5 and Shift-JIS text has trail bytes below 0x80 that GB and
    EUC-KR text never has, GB text uses lead bytes above 0xC8 that Korean never does, and
    Japanese text has kana."""
    import unicodedata

    total, count, ascii_trails, high_leads, kana = 0.0, 0, 0, 0, 0
    for snippet, start in snippets:
        decoder = codecs.getincrementaldecoder(encoding)("replace")
        text = decoder.decode(snippet[start:], final=False)
        for char in text:
            if ord(char) < 128:
                continue
            count += 1
            if char == "\ufffd":
                total -= 6
                continue
            try:
                raw = char.encode(encoding)
            except UnicodeEncodeError:
                raw = b""
            if len(raw) >= 2:
                ascii_trails += raw[1] < 0x80
                high_leads += raw[0] > 0xC8
            kana += 0x3040 <= ord(char) <= 0x30FF
            if _common_cjk(encoding, char, raw):
                total += 1.0
            elif unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
                total += 0.3
            else:
                total -= 1.0
    if not count:
        return 0.0
    score = total / count
    if count >= 30:
        if encoding in ("big5", "cp932") and not ascii_trails:
            score -= 0.5
        if encoding in ("cp932", "euc_jp") and not kana:
            score -= 0.5  # Japanese text without any kana: Chinese or Korean
        if encoding == "gb18030" and (not high_leads or kana > 0.05 * count):
            score -= 0.5
    return score


def detect_encoding(stream, label: str = "the file") -> EncodingGuess:
    """The encoding of a text file, read to its end from a binary stream.

    Byte-order marks decide at once. Otherwise the whole file is decoded as UTF-8, and checked
    against every candidate code page (a byte a code page leaves undefined rules it out); the
    candidates left are scored on a sample of their non-ASCII bytes with their neighbours.
    """
    first = stream.read(ENCODING_CHUNK)
    for bom, name in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                      (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
                      (b"\xfe\xff", "utf-16")):
        if first.startswith(bom):
            return EncodingGuess(name, "strict", None, len(first) + _drain(stream))
    utf16 = _utf16_without_bom(first)
    if utf16:
        note = f"{label}: read as {utf16} (UTF-16 without a byte-order mark)"
        return EncodingGuess(utf16, "strict", note, len(first) + _drain(stream))

    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    bad = good = size = high = paired = 0
    first_bad = None
    undefined = _undefined_bytes()
    present: set[int] = set()
    snippets: list[tuple[bytes, int]] = []
    # The double-byte decoders start when UTF-8 first fails: real CJK text is never valid UTF-8
    # for long, and they are the costly part of the scan.
    multi: dict | None = None
    chunk = first
    while chunk:
        text = utf8.decode(chunk)
        if not chunk.isascii():
            # U+FFFD the decoder made, not those the file holds (its UTF-8 is EF BF BD)
            replaced = text.count("\ufffd") - chunk.count(b"\xef\xbf\xbd")
            if replaced > 0:
                if first_bad is None:
                    first_bad = size + _first_invalid_utf8(chunk)
                bad += replaced
            replaced = max(replaced, 0)
            good += len(text) - len(text.encode("ascii", "ignore")) - replaced
            present.update(byte for byte, single in undefined if byte not in present
                           and single in chunk)
            marks = chunk.translate(_HIGH_MARKS)
            high += marks.count(b"1")
            paired += 2 * marks.count(b"11")
            if len(snippets) < _MAX_SNIPPETS:
                snippets.extend(_snippets(chunk))
        feed = chunk
        if multi is None and bad:
            multi = {name: codecs.getincrementaldecoder(name)("strict") for name in MULTI_BYTE}
            if size:  # start on a line: a character boundary
                feed = chunk[chunk.find(b"\n") + 1 :]
        if multi:
            for name in list(multi):
                try:
                    multi[name].decode(feed)
                except UnicodeDecodeError:
                    del multi[name]
        size += len(chunk)
        chunk = stream.read(ENCODING_CHUNK)
    bad += utf8.decode(b"", final=True).count("\ufffd")
    if bad == 0:
        return EncodingGuess("utf-8", "strict", None, size)
    if good >= bad:  # mostly valid multi-byte sequences: UTF-8 with a few stray bytes
        where = f" (the first at byte {first_bad:,})" if first_bad is not None else ""
        note = (f"{label}: read as UTF-8; {bad} invalid byte sequence(s){where} were replaced "
                "with U+FFFD: pass encoding=... to decode them otherwise")
        return EncodingGuess("utf-8", "replace", note, size)

    scored = []
    for rank, (name, prior) in enumerate(SINGLE_BYTE):
        if any(byte in present for byte in _undefined_in(name)):
            continue
        scored.append((_single_byte_score(name, snippets) + prior, -rank, name))
    if multi and paired >= 0.7 * high:  # double-byte text comes in runs of non-ASCII bytes
        for rank, name in enumerate(MULTI_BYTE):
            try:
                multi[name].decode(b"", final=True)
            except (KeyError, UnicodeDecodeError):
                continue
            scored.append((_multi_byte_score(name, snippets), -rank - 100, name))
    score, _, best = max(scored)
    sure = "" if score >= 0.5 else " (a guess: the text fits no encoding well)"
    note = (f"{label}: read as {best}, not UTF-8{sure}; pass encoding=... if the text looks "
            "wrong")
    return EncodingGuess(best, "strict", note, size)


def _drain(stream) -> int:
    size = 0
    while True:
        chunk = stream.read(ENCODING_CHUNK)
        if not chunk:
            return size
        size += len(chunk)


def _utf16_without_bom(head: bytes) -> str | None:
    sample = head[:4096]
    pairs = len(sample) // 2
    if pairs < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.3 * pairs and even < 0.02 * pairs:
        name = "utf-16-le"
    elif even > 0.3 * pairs and odd < 0.02 * pairs:
        name = "utf-16-be"
    else:
        return None
    try:
        text = sample[: pairs * 2].decode(name)
    except UnicodeDecodeError:
        return None
    plain = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return name if plain >= 0.95 * len(text) else None  # not NUL-strewn binary


def _first_invalid_utf8(chunk: bytes) -> int:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _snippets(chunk: bytes) -> list[tuple[bytes, int]]:
    """Up to _SNIPPETS_PER_CHUNK (bytes around a run of non-ASCII bytes, where the run starts in
    them), spread over the chunk. A run's start is a character boundary in the double-byte
    encodings too (their lead bytes are never ASCII)."""
    found, last = [], 0
    step = max(1, len(chunk) // _SNIPPETS_PER_CHUNK)
    for pos in range(0, len(chunk), step):
        match = _HIGH_RUN.search(chunk, max(pos, last))
        if match is None:
            break
        begin = max(last, match.start() - _RADIUS)
        found.append((chunk[begin : match.end() + _RADIUS], match.start() - begin))
        last = match.end() + _RADIUS
    return found


_undefined_cache: dict[str, tuple[int, ...]] = {}


def _undefined_in(encoding: str) -> tuple[int, ...]:
    if encoding not in _undefined_cache:
        missing = []
        for byte in range(128, 256):
            try:
                bytes([byte]).decode(encoding)
            except UnicodeDecodeError:
                missing.append(byte)
        _undefined_cache[encoding] = tuple(missing)
    return _undefined_cache[encoding]


def _undefined_bytes() -> list[tuple[int, bytes]]:
    union = sorted({byte for name, _ in SINGLE_BYTE for byte in _undefined_in(name)})
    return [(byte, bytes([byte])) for byte in union]


def looks_like_text(head: bytes) -> bool:
    if not head:
        return True
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(head):
        return True
    if b"\x00" in head:
        return False
    controls = sum(head.count(bytes([c])) for c in range(1, 32) if c not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100


# Memory: what this run may still allocate, from its cgroup (v2, else v1), so that a file that
# declares more than that is refused with a message instead of killing the run.


def memory_budget() -> tuple[int | None, int | None]:
    """(bytes still free, the limit), None where unknown. Page cache counts as free: the kernel
    reclaims it before it kills."""
    limit = usage = reclaimable = None
    for max_file, current_file, stat_file, keys in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
         "/sys/fs/cgroup/memory.stat", ("active_file", "inactive_file")),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory/memory.stat",
         ("total_active_file", "total_inactive_file")),
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
