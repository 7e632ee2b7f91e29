"""Text encodings for load_file: which one a file is written in, decided over the whole file.

Byte-order marks decide at once; UTF-8 is checked over the whole file at C speed; otherwise each
single-byte code page that defines every byte in the file is scored on a bounded sample of its
non-ASCII bytes with their neighbours (letters fitting their script, case and language score
high), and double-byte encodings (Shift-JIS, EUC, GB18030, Big5) are scored when the non-ASCII
bytes come in runs. Standard library only: the unit tests run it on the host.
"""

from __future__ import annotations

import codecs
import re
from collections import namedtuple

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
    ("cp1252", 0.06),
    ("iso-8859-15", 0.02),
    ("mac_roman", 0.0),
    ("cp1250", 0.01),
    ("iso-8859-2", 0.0),
    ("cp1251", 0.02),
    ("koi8_r", 0.0),
    ("iso-8859-5", -0.02),
    ("cp866", -0.01),
    ("cp1253", 0.0),
    ("iso-8859-7", 0.01),
    ("cp1254", -0.01),
    ("cp1257", -0.02),
    ("cp1255", 0.0),
    ("iso-8859-8", -0.02),
    ("cp1256", 0.0),
    ("cp874", -0.02),
    ("cp437", -0.03),
    ("cp850", -0.02),
    ("latin-1", -0.05),
)
MULTI_BYTE = ("cp932", "euc_jp", "gb18030", "big5", "cp949")


# Named tuples from collections, not typing: typing costs ~5 ms of the runner's start.
EncodingGuess = namedtuple("EncodingGuess", "encoding errors note size")
"""encoding; errors: "strict", or "replace" for UTF-8 with a few invalid bytes; note: what to
tell the user (None for UTF-8 and byte-order marks); size: the bytes read."""
_Props = namedtuple("_Props", "kind script case")  # case: 0 none, 1 lower, 2 upper


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
_LATIN_LANGUAGES = tuple(
    set(letters)
    for letters in (
        "éèêàâçôûùîïëÿœæ",
        "äöüß",
        "áéíóúñü",
        "áâãàçéêíóôõú",
        "àèéìòù",
        "æøå",
        "äöå",
        "áéíóúýþðæö",
        "ëïéèö",
        "àèéíïòóúç",
        "áčďéěíňóřšťúůýž",
        "áäčďéíĺľňóôŕšťúýž",
        "ąćęłńóśźż",
        "áéíóöőúüű",
        "ăâîșțşţ",
        "čćđšž",
        "çğıöşüi̇",
        "äöõüšž",
        "ąčęėįšųūž",
        "āčēģīķļņšūž",
        "âêîôûŵŷ",
    )
)


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
                    if before.script != p.script or (before.case == 1 and p.case == 2):
                        score -= 1.5
                if after.kind in _LETTERS:
                    if after.script != p.script:
                        score -= 1.5
                    elif p.case == 1 and after.case == 2:
                        score -= 0.5
                if p.script == "LATIN":
                    accented[byte] = accented.get(byte, 0) + 1
                    if (
                        i
                        and i < last
                        and snippet[i - 1] >= 128
                        and snippet[i + 1] >= 128
                        and before.script == "LATIN"
                        and after.script == "LATIN"
                    ):
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
                money = p.script == "CURRENCY" and (
                    _digit(snippet, i - 1) or _digit(snippet, i + 1)
                )
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
        covered = max(
            sum(n for letter, n in letters.items() if letter in language)
            for language in _LATIN_LANGUAGES
        )
        score -= 0.6 * (1 - covered / latin) * latin / count
    if cases[1] + cases[2] >= 20 and (not cases[1] or not cases[2]):
        score -= 0.3  # Cyrillic or Greek in one case only: likely an uncased script, misread
    return score


def _same_script(props: list, snippet: bytes, at: int, script: str) -> bool:
    return any(
        byte >= 128
        and index != at
        and props[byte].kind in _LETTERS
        and props[byte].script == script
        for index, byte in enumerate(snippet)
    )


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
    for bom, name in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if first.startswith(bom):
            return EncodingGuess(name, "strict", None, len(first) + _drain(stream))
    utf16 = utf16_without_bom(first)
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
            present.update(
                byte for byte, single in undefined if byte not in present and single in chunk
            )
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
        note = (
            f"{label}: read as UTF-8; {bad} invalid byte sequence(s){where} were replaced "
            "with U+FFFD: pass encoding=... to decode them otherwise"
        )
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
    note = f"{label}: read as {best}, not UTF-8{sure}; pass encoding=... if the text looks wrong"
    return EncodingGuess(best, "strict", note, size)


def _drain(stream) -> int:
    size = 0
    while True:
        chunk = stream.read(ENCODING_CHUNK)
        if not chunk:
            return size
        size += len(chunk)


def utf16_without_bom(head: bytes) -> str | None:
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
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or utf16_without_bom(head):
        return True
    if b"\x00" in head:
        return False
    controls = sum(head.count(bytes([c])) for c in range(1, 32) if c not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100
