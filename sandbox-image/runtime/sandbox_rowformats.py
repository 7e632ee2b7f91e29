"""Row-oriented binary tables for load_file, read with what the image has (no dbfread, no
fastavro): dBASE .dbf (the attribute tables of shapefiles) and Avro object container files."""

from __future__ import annotations

import datetime
import io
import json
import struct

from sandbox_archives import human
from sandbox_errors import guard, note, require

# dBASE language driver byte -> code page (the ones seen in practice).
_DBF_CODEPAGES = {
    0x01: "cp437",
    0x02: "cp850",
    0x03: "cp1252",
    0x04: "mac_roman",
    0x08: "cp865",
    0x09: "cp437",
    0x0A: "cp850",
    0x0B: "cp437",
    0x0D: "cp437",
    0x0E: "cp850",
    0x0F: "cp437",
    0x10: "cp850",
    0x11: "cp437",
    0x12: "cp850",
    0x13: "cp932",
    0x14: "cp850",
    0x15: "cp437",
    0x16: "cp850",
    0x17: "cp865",
    0x18: "cp437",
    0x19: "cp437",
    0x1A: "cp850",
    0x1B: "cp437",
    0x1C: "cp863",
    0x1D: "cp850",
    0x1F: "cp852",
    0x22: "cp852",
    0x23: "cp852",
    0x24: "cp860",
    0x25: "cp850",
    0x26: "cp866",
    0x37: "cp850",
    0x40: "cp852",
    0x4D: "cp936",
    0x4E: "cp949",
    0x4F: "cp950",
    0x50: "cp874",
    0x57: "cp1252",
    0x58: "cp1252",
    0x59: "cp1252",
    0x64: "cp852",
    0x65: "cp866",
    0x66: "cp865",
    0x67: "cp861",
    0x6A: "cp737",
    0x6B: "cp857",
    0x78: "cp950",
    0x79: "cp949",
    0x7A: "cp936",
    0x7B: "cp932",
    0x7C: "cp874",
    0x7D: "cp1255",
    0x7E: "cp1256",
    0x96: "mac_cyrillic",
    0x97: "mac_latin2",
    0x98: "mac_greek",
    0xC8: "cp1250",
    0xC9: "cp1251",
    0xCA: "cp1254",
    0xCB: "cp1253",
    0xCC: "cp1257",
}


def load_dbf(source, options: dict):
    """A dBASE III/IV/FoxPro table as a DataFrame; memo fields (kept in a .dbt/.fpt file beside
    it) come back as their block numbers."""
    pd = require("pandas", "pandas", source)
    np = require("numpy", "numpy", source)
    path = source.path()
    with open(path, "rb") as fh:
        header = fh.read(32)
        if len(header) < 32:
            raise ValueError("the file is shorter than a dBASE header")
        count, header_size, record_size = struct.unpack("<IHH", header[4:12])
        fields, position = [], 1  # byte 0 of each record is the deletion flag
        while True:
            descriptor = fh.read(32)
            if not descriptor or descriptor[:1] == b"\x0d" or len(descriptor) < 32:
                break
            name = descriptor[:11].split(b"\x00")[0].decode("latin-1").strip()
            kind = chr(descriptor[11])
            length, decimals = descriptor[16], descriptor[17]
            if kind == "C" and header[0] in (0x30, 0x31, 0x32, 0xF5, 0x43, 0xB3):
                length += decimals * 256  # FoxPro: long character fields
            fields.append((name or f"field{len(fields)}", kind, position, length, decimals))
            position += length
        guard(
            source,
            4 * count * max(record_size, 1),
            f"it declares {count:,} records of {record_size} bytes",
        )
        fh.seek(header_size)
        data = fh.read(count * record_size)
    count = min(count, len(data) // max(record_size, 1))
    if not fields or record_size <= 0:
        raise ValueError("no field descriptors: not a dBASE table")
    rows = (
        np.frombuffer(data[: count * record_size], dtype=f"S{record_size}")
        if count
        else np.array([], dtype=f"S{record_size}")
    )
    raw = rows.view(np.uint8).reshape(count, record_size) if count else None
    encoding = options.pop("encoding", None) or _DBF_CODEPAGES.get(header[29])
    if encoding is None:
        import sandbox_detect

        encoding = sandbox_detect.detect_encoding(io.BytesIO(data)).encoding
    columns = {}
    for name, kind, start, length, decimals in fields:
        cells = (
            raw[:, start : start + length].copy().view(f"S{length}").ravel()
            if count
            else np.array([], dtype=f"S{length}")
        )
        columns[name] = _dbf_column(pd, np, cells, kind, decimals, encoding)
    frame = pd.DataFrame(columns)
    if count:
        deleted = raw[:, 0] == ord("*")
        if deleted.any():
            note(f"{source.label}: left out {int(deleted.sum())} record(s) marked as deleted")
            frame = frame[~deleted].reset_index(drop=True)
    return frame


def _dbf_column(pd, np, cells, kind: str, decimals: int, encoding: str):
    if kind in ("N", "F"):
        text = pd.Series(np.char.strip(cells).astype(str))
        values = pd.to_numeric(text.replace({"": None}), errors="coerce")
        return (
            values.astype("Int64")
            if decimals == 0 and values.notna().all() and len(values) and (values % 1 == 0).all()
            else values
        )
    if kind == "I":
        return pd.Series(np.frombuffer(cells.tobytes(), dtype="<i4"))
    if kind in ("O",) or (kind == "B" and cells.dtype.itemsize == 8):
        return pd.Series(np.frombuffer(cells.tobytes(), dtype="<f8"))
    if kind == "Y":
        return pd.Series(np.frombuffer(cells.tobytes(), dtype="<i8") / 10000)
    if kind == "D":
        text = pd.Series(np.char.strip(cells).astype(str))
        return pd.to_datetime(
            text.replace({"": None, "00000000": None}), format="%Y%m%d", errors="coerce"
        )
    if kind == "L":
        text = pd.Series(np.char.strip(cells).astype(str)).str.upper()
        return text.map(lambda v: True if v in ("T", "Y") else False if v in ("F", "N") else None)
    # C, M (memo block numbers) and the rest: text
    return pd.Series(
        [cell.decode(encoding, "replace").rstrip(" \x00") for cell in cells.tolist()], dtype=object
    )


# Avro object container files

_AVRO_MAGIC = b"Obj\x01"


def load_avro(source, options: dict):
    """Records of an Avro object container file: a DataFrame for a record schema (nested
    values as Python objects), else a list."""
    as_dataframe = options.pop("as_dataframe", True)
    size = source.measure(None)
    guard(source, 20 * size, f"its {human(size)} of Avro data")
    with source.open() as fh:
        data = fh.read()
    reader = _Bytes(data)
    if reader.read(4) != _AVRO_MAGIC:
        raise ValueError("not an Avro object container file (no Obj\\x01 magic)")
    meta = {}
    for key, value in _read_map(reader, lambda r: r.read(r.long())):
        meta[key] = value
    schema = json.loads(meta.get("avro.schema", b"null"))
    codec = meta.get("avro.codec", b"null").decode()
    sync = reader.read(16)
    decode = _decoder(schema, {})
    records = []
    while reader.pos < len(data):
        count = reader.long()
        block = _decompress(codec, reader.read(reader.long()))
        if reader.read(16) != sync:
            raise ValueError("a block does not end with the file's sync marker: damaged file")
        inner = _Bytes(block)
        records.extend(decode(inner) for _ in range(count))
    if as_dataframe and isinstance(schema, dict) and schema.get("type") == "record":
        pd = require("pandas", "pandas", source)
        names = [field["name"] for field in schema.get("fields", [])]
        return pd.DataFrame(records, columns=names)
    return records


class _Bytes:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ValueError("Avro data ends early")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def long(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("Avro data ends early")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)  # zig-zag
            shift += 7


def _read_map(reader: _Bytes, value):
    while True:
        count = reader.long()
        if count == 0:
            return
        if count < 0:
            count = -count
            reader.long()  # the block's size in bytes
        for _ in range(count):
            key = reader.read(reader.long()).decode("utf-8")
            yield key, value(reader)


def _decompress(codec: str, block: bytes) -> bytes:
    if codec == "null":
        return block
    if codec == "deflate":
        import zlib

        return zlib.decompress(block, -15)
    if codec == "bzip2":
        import bz2

        return bz2.decompress(block)
    if codec == "xz":
        import lzma

        return lzma.decompress(block)
    import pyarrow

    if codec == "snappy":  # the block ends with a CRC32 of the uncompressed data
        payload, shift, size, i = block[:-4], 0, 0, 0
        while True:  # raw snappy starts with the uncompressed length as a varint
            byte = payload[i]
            size |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        return pyarrow.Codec("snappy").decompress(payload, decompressed_size=size).to_pybytes()
    if codec == "zstandard":
        return pyarrow.CompressedInputStream(pyarrow.BufferReader(block), "zstd").read()
    raise ValueError(f"unknown Avro codec {codec!r}")


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _decoder(schema, named: dict):
    """A function reading one value of `schema` from a _Bytes."""
    if isinstance(schema, list):  # union
        branches = [_decoder(branch, named) for branch in schema]
        return lambda r: branches[r.long()](r)
    if isinstance(schema, str):
        if schema in named:
            return lambda r: named[schema](r)
        schema = {"type": schema}
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        return _decoder(kind, named)
    logical = schema.get("logicalType")
    if kind == "null":
        return lambda r: None
    if kind == "boolean":
        return lambda r: r.read(1) != b"\x00"
    if kind in ("int", "long"):
        if logical == "date":
            return lambda r: datetime.date(1970, 1, 1) + datetime.timedelta(days=r.long())
        if logical in ("timestamp-millis", "timestamp-micros"):
            unit = 1000 if logical == "timestamp-millis" else 1_000_000
            return lambda r: _EPOCH + datetime.timedelta(microseconds=r.long() * 1_000_000 // unit)
        return _Bytes.long
    if kind == "float":
        return lambda r: struct.unpack("<f", r.read(4))[0]
    if kind == "double":
        return lambda r: struct.unpack("<d", r.read(8))[0]
    if kind in ("bytes", "fixed"):
        size = schema.get("size")
        read = (lambda r: r.read(size)) if kind == "fixed" else (lambda r: r.read(r.long()))
        if kind == "fixed":
            named[schema.get("name", "")] = read
        if logical == "decimal":
            import decimal

            scale = schema.get("scale", 0)
            return lambda r: decimal.Decimal(int.from_bytes(read(r), "big", signed=True)).scaleb(
                -scale
            )
        return read
    if kind == "string":
        return lambda r: r.read(r.long()).decode("utf-8", "replace")
    if kind == "enum":
        symbols = schema["symbols"]
        decode = lambda r: symbols[r.long()]  # noqa: E731
        named[schema.get("name", "")] = decode
        return decode
    if kind == "array":
        items = _decoder(schema["items"], named)

        def read_array(r):
            values = []
            while True:
                count = r.long()
                if count == 0:
                    return values
                if count < 0:
                    count = -count
                    r.long()
                values.extend(items(r) for _ in range(count))

        return read_array
    if kind == "map":
        values = _decoder(schema["values"], named)
        return lambda r: dict(_read_map(r, values))
    if kind in ("record", "error"):
        fields = []

        def read_record(r):
            return {name: decode(r) for name, decode in fields}

        named[schema.get("name", "")] = read_record
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema.get('name', '')}"] = read_record
        fields.extend(
            (field["name"], _decoder(field["type"], named)) for field in schema.get("fields", [])
        )
        return read_record
    raise ValueError(f"unknown Avro type {kind!r}")
