"""Arrow-based formats for load_file: Parquet, Feather / Arrow IPC files and streams, ORC.

Before reading, the size the file declares (Parquet's footer, the Arrow messages' buffers, ORC's
row count) is weighed against the run's free memory. When pyarrow reads a table that pandas
cannot convert (out-of-range dates, null dictionary entries, unions...), the table is converted
again with dtype_backend="pyarrow", and column by column as a last resort, with a note.
"""

from __future__ import annotations

import struct

from sandbox_archives import human
from sandbox_errors import failed, guard, note, require

FIX = (
    "columns=[...] reads fewer columns; dtype_backend='pyarrow' keeps Arrow types; other "
    "options go to the pandas reader."
)
# Bytes per value in memory, by Parquet physical type; pandas' copy comes on top of Arrow's.
_WIDTH = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 8, "FLOAT": 4, "DOUBLE": 8}


def load_parquet(source, options: dict):
    pd = require("pandas", "pandas", source)
    pq = require("pyarrow.parquet", "pyarrow", source)
    path = source.path()
    metadata = pq.ParquetFile(path).metadata
    columns = options.get("columns")
    declared, int96 = _parquet_bytes(metadata, columns)
    guard(
        source,
        2 * declared,
        f"its footer declares {metadata.num_rows:,} rows of {metadata.num_columns} column(s)",
        "columns=[...] reads fewer columns, and pyarrow.parquet.ParquetFile(get_file_path(...))"
        ".read_row_group(i) one row group at a time.",
    )
    if int96:
        # INT96 timestamps (Spark, Impala) are read as nanoseconds by default, which silently
        # wraps dates outside 1677-2262; microseconds hold them all.
        options.setdefault("coerce_int96_timestamp_unit", "us")
    return _convert(
        source,
        options,
        lambda **kw: pd.read_parquet(path, **kw),
        lambda: pq.read_table(path, **_arrow_options(options)),
    )


def _parquet_bytes(metadata, columns) -> tuple[int, bool]:
    wanted = {str(c) for c in columns} if columns else None
    total, int96 = 0, False
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            if wanted is not None and column.path_in_schema.split(".")[0] not in wanted:
                continue
            physical = column.physical_type
            int96 = int96 or physical == "INT96"
            if physical == "FIXED_LEN_BYTE_ARRAY":
                width = metadata.schema.column(index).length or 8
            else:
                # Variable-length values: at least an 8-byte offset or object pointer each.
                width = _WIDTH.get(physical, 8)
            if str(metadata.schema.column(index).logical_type) == "Null":
                width = 8  # all-null columns store nothing, and become 8-byte Nones
            total += max(column.total_uncompressed_size, column.num_values * max(width, 1))
    return total, int96


def load_feather(source, options: dict):
    """Feather / Arrow IPC files (ARROW1, or Feather v1) and Arrow IPC streams."""
    pd = require("pandas", "pandas", source)
    pa = require("pyarrow", "pyarrow", source)
    ipc = require("pyarrow.ipc", "pyarrow", source)
    head = source.head()
    path = source.path()
    if head[:4] == b"FEA1":  # Feather version 1: no IPC messages to weigh; bounded by its size
        return _convert(source, options, lambda **kw: pd.read_feather(path, **kw), None)
    stream = not head.startswith(b"ARROW1")
    declared, rows = _ipc_bytes(pa, path, 0 if stream else 8)
    guard(
        source,
        2 * declared,
        f"its record batches declare {rows:,} rows in {human(declared)} of buffers",
        "columns=[...] reads fewer columns, and pyarrow.ipc.open_file / open_stream on "
        "get_file_path(...) reads one record batch at a time.",
    )
    columns = options.pop("columns", None)

    def arrow_table():
        with pa.memory_map(path) as mapped:
            if stream:
                table = ipc.open_stream(mapped).read_all()
            else:
                table = ipc.open_file(mapped).read_all()
        return table.select(columns) if columns else table

    if stream:
        if source.type != "arrow_stream":
            note(
                f"{source.label} is an Arrow IPC stream (not the IPC file format): read with "
                "pyarrow.ipc.open_stream"
            )
        return _convert(source, options, lambda **kw: _to_pandas(arrow_table(), **kw), arrow_table)
    if columns:
        options["columns"] = columns
    return _convert(source, options, lambda **kw: pd.read_feather(path, **kw), arrow_table)


def load_orc(source, options: dict):
    pd = require("pandas", "pandas", source)
    orc = require("pyarrow.orc", "pyarrow", source)
    path = source.path()
    reader = orc.ORCFile(path)
    columns = options.get("columns")
    schema = reader.schema
    fields = [f for f in schema if not columns or f.name in columns]
    width = sum(_arrow_width(f.type) for f in fields) or 8
    declared = reader.nrows * width
    guard(
        source,
        2 * declared,
        f"it declares {reader.nrows:,} rows of {len(fields)} column(s)",
        "columns=[...] reads fewer columns, and pyarrow.orc.ORCFile(get_file_path(...))"
        ".read_stripe(i) one stripe at a time.",
    )
    return _convert(
        source, options, lambda **kw: pd.read_orc(path, **kw), lambda: reader.read(columns=columns)
    )


def _arrow_width(arrow_type) -> int:
    try:
        return max(1, arrow_type.bit_width // 8)
    except ValueError:  # variable width: an offset and some bytes per value, at least
        return 16


def _arrow_options(options: dict) -> dict:
    allowed = ("columns", "filters", "coerce_int96_timestamp_unit")
    return {key: options[key] for key in allowed if key in options}


def _to_pandas(table, dtype_backend=None):
    try:
        from pandas.io._util import arrow_table_to_pandas  # what read_feather itself uses
    except ImportError:
        if dtype_backend == "pyarrow":
            import pandas

            return table.to_pandas(types_mapper=pandas.ArrowDtype)
        return table.to_pandas()
    if dtype_backend is None:
        return arrow_table_to_pandas(table)
    return arrow_table_to_pandas(table, dtype_backend=dtype_backend)


def _convert(source, options: dict, read_pandas, read_arrow):
    """pandas' reader first; when it fails on a table pyarrow reads, pandas' conversion is what
    failed: convert again keeping Arrow types, then column by column."""
    try:
        return read_pandas(**options)
    except (TypeError, MemoryError):
        raise
    except Exception as exc:
        first = exc
    if read_arrow is None or options.get("dtype_backend") == "pyarrow":
        raise failed(source, first, FIX)
    try:
        table = read_arrow()
    except Exception:
        raise failed(source, first, FIX) from None
    reason = f"{type(first).__name__}: {' '.join(str(first).split())[:200]}"
    try:
        frame = _to_pandas(table, dtype_backend="pyarrow")
        note(
            f"{source.label}: pandas could not convert its Arrow types ({reason}); loaded with "
            "dtype_backend='pyarrow' (columns keep Arrow types, pandas.ArrowDtype)"
        )
        return frame
    except Exception:
        pass
    import pandas

    columns, kept = {}, []
    for name in table.column_names:
        column = table.column(name)
        try:
            columns[name] = column.to_pandas()
        except Exception:
            try:
                columns[name] = pandas.Series(pandas.arrays.ArrowExtensionArray(column))
            except Exception:
                columns[name] = pandas.Series(column.to_pylist(), dtype=object)
            kept.append(name)
    note(
        f"{source.label}: pandas could not convert its Arrow types ({reason}); columns "
        f"{kept} keep Arrow types or Python objects"
    )
    return pandas.DataFrame(columns)


# Arrow IPC messages: the uncompressed size each record batch declares, from its flatbuffer
# metadata (and, for compressed buffers, the length prefix each one carries), read without
# decoding any data.


def _ipc_bytes(pa, path: str, offset: int) -> tuple[int, int]:
    total = rows = 0
    try:
        with pa.memory_map(path) as mapped:
            mapped.seek(offset)
            reader = pa.ipc.MessageReader.open_stream(mapped)
            for message in reader:
                if message.type not in ("record batch", "dictionary batch"):
                    continue
                length, buffers, compressed = _batch_layout(
                    message.metadata.to_pybytes(), message.type == "dictionary batch"
                )
                if message.type == "record batch":
                    rows += length
                body = message.body
                for start, size in buffers:
                    if compressed and size >= 8 and body is not None:
                        (declared,) = struct.unpack("<q", body[start : start + 8].to_pybytes())
                        total += declared if declared >= 0 else size - 8
                    else:
                        total += size
    except Exception:
        return total, rows
    return total, rows


def _batch_layout(buf: bytes, dictionary: bool) -> tuple[int, list[tuple[int, int]], bool]:
    """(row count, [(offset, length) of each buffer], compressed?) of a Message flatbuffer."""
    message = _table(buf, struct.unpack_from("<I", buf, 0)[0])
    header = _field_table(buf, message, 2)
    if dictionary:  # DictionaryBatch { id, data: RecordBatch, isDelta }
        header = _field_table(buf, header, 1)
    length = _field_scalar(buf, header, 0, "<q", 0)
    buffers = []
    vector = _field_vector(buf, header, 2)
    if vector is not None:
        start, count = vector
        for i in range(count):
            buffers.append(struct.unpack_from("<qq", buf, start + 16 * i))
    compressed = _field_offset(buf, header, 3) is not None
    return length, buffers, compressed


def _table(buf: bytes, pos: int) -> tuple[int, int]:
    (soffset,) = struct.unpack_from("<i", buf, pos)
    return pos, pos - soffset  # (table start, vtable start)


def _field_offset(buf: bytes, table: tuple[int, int], index: int) -> int | None:
    pos, vtable = table
    (vtable_size,) = struct.unpack_from("<H", buf, vtable)
    slot = 4 + 2 * index
    if slot >= vtable_size:
        return None
    (offset,) = struct.unpack_from("<H", buf, vtable + slot)
    return pos + offset if offset else None


def _field_scalar(buf, table, index, fmt, default):
    at = _field_offset(buf, table, index)
    return default if at is None else struct.unpack_from(fmt, buf, at)[0]


def _field_table(buf, table, index):
    at = _field_offset(buf, table, index)
    if at is None:
        raise ValueError("missing table")
    return _table(buf, at + struct.unpack_from("<I", buf, at)[0])


def _field_vector(buf, table, index):
    at = _field_offset(buf, table, index)
    if at is None:
        return None
    start = at + struct.unpack_from("<I", buf, at)[0]
    return start + 4, struct.unpack_from("<I", buf, start)[0]
