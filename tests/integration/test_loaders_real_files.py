"""load_file() on the files people actually have, in real containers (issue 16).

Compressed tables, text in real encodings, Arrow files pandas cannot convert, formats told apart
by content (IDL or SPSS .sav, NetCDF 3 or 4), readers the image has (ARFF, msgpack, Arrow
streams, object arrays, odd images), and files that declare more than the run's memory: each
fixture is built here, with the standard library or by a first sandbox run with the image's own
libraries, and the loaded values are asserted.
"""

import bz2
import gzip
import io
import json
import lzma
import struct
import tarfile
import zipfile
import zlib

from app.sandbox import RunStatus
from tests.integration.test_loaders import ok


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tarred(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gzip_named(data: bytes, recorded_name: str) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=recorded_name, mode="wb", fileobj=buffer, mtime=0) as fh:
        fh.write(data)
    return buffer.getvalue()


def idl_save(variables: list, compressed: bool = False) -> bytes:
    """An IDL SAVE file of double, string and int32-array variables, in the record layout
    scipy.io.readsav reads (VARIABLE records, then END_MARKER; zlib-compressed records for the
    /compress variant). No writer exists in the image, so the test writes the bytes."""

    def string(text: str) -> bytes:
        data = text.encode("latin-1")
        return struct.pack(">l", len(data)) + data + b"\0" * (-len(data) % 4)

    out = bytearray(b"SR\x00\x06" if compressed else b"SR\x00\x04")
    for name, value in variables:
        body = string(name.upper())
        if isinstance(value, float):
            body += struct.pack(">lll", 5, 0, 7) + struct.pack(">d", value)  # DOUBLE, VARSTART
        elif isinstance(value, str):
            data = value.encode("latin-1")
            body += struct.pack(">lllll", 7, 0, 7, len(data), len(data))
            body += data + b"\0" * (-len(data) % 4)
        else:  # LONG array: type 3, array flag 4, array descriptor, then the values
            count = len(value)
            body += struct.pack(">ll", 3, 4) + struct.pack(">lllll", 8, 0, 4 * count, count, 1)
            body += b"\0" * 8 + struct.pack(">l", 8) + struct.pack(">8l", count, *[1] * 7)
            body += struct.pack(">l", 7) + struct.pack(f">{count}l", *value)
        if compressed:
            body = zlib.compress(body)
        nextrec = len(out) + 16 + len(body)
        out += struct.pack(">lII", 2, nextrec, 0) + b"\0" * 4 + body
    out += struct.pack(">lII", 6, len(out) + 16, 0) + b"\0" * 4
    return bytes(out)


def fits_image(width: int, height: int, pixels: bytes) -> bytes:
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        f"NAXIS1  = {width:>20}",
        f"NAXIS2  = {height:>20}",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return header + pixels + b"\0" * (-len(pixels) % 2880)


def sun_raster(width: int, height: int, pixels: bytes) -> bytes:
    return struct.pack(">8I", 0x59A66A95, width, height, 8, len(pixels), 1, 0, 0) + pixels


XPM = (
    b'/* XPM */\nstatic char *x[] = {\n"2 2 2 1",\n"a c #FF0000",\n"b c #0000FF",\n'
    b'"ab",\n"ba"\n};\n'
)


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def dbf_table(fields: list, rows: list) -> bytes:
    """A dBASE III table (a shapefile's .dbf): fields [(name, type, length, decimals)], rows
    (deleted?, values), text in cp1252 (language driver 0x57)."""
    record = 1 + sum(length for _, _, length, _ in fields)
    out = bytearray(struct.pack("<BBBBIHH", 3, 124, 1, 1, len(rows), 33 + 32 * len(fields), record))
    out += b"\0" * 17 + b"\x57\0\0"
    for name, kind, length, decimals in fields:
        out += name.encode().ljust(11, b"\0") + kind.encode() + b"\0" * 4
        out += bytes([length, decimals]) + b"\0" * 14
    out += b"\x0d"
    for deleted, values in rows:
        out += b"*" if deleted else b" "
        for (_, kind, length, _), value in zip(fields, values, strict=True):
            text = str(value).encode("cp1252")
            out += text.rjust(length) if kind == "N" else text.ljust(length)
    return bytes(out + b"\x1a")


def zigzag(number: int) -> bytes:
    number = (number << 1) ^ (number >> 63)
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | 0x80 if number else byte)
        if not number:
            return bytes(out)


def avro_file(records: list) -> bytes:
    """An Avro object container file (null codec) of records {id: long, name: string,
    score: [null, double]}."""
    schema = {
        "type": "record",
        "name": "row",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "score", "type": ["null", "double"]},
        ],
    }
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": b"null"}
    out = bytearray(b"Obj\x01") + zigzag(len(meta))
    for key, value in meta.items():
        out += zigzag(len(key)) + key.encode() + zigzag(len(value)) + value
    sync = b"\x5a" * 16
    out += zigzag(0) + sync
    body = bytearray()
    for row in records:
        name = row["name"].encode()
        body += zigzag(row["id"]) + zigzag(len(name)) + name
        body += zigzag(0) if row["score"] is None else zigzag(1) + struct.pack("<d", row["score"])
    return bytes(out + zigzag(len(records)) + zigzag(len(body)) + body + sync)


TIPS = b"total,tip\n16.99,1.01\n10.34,1.66\n"


async def test_compressed_tables_are_read_by_their_inner_name(load):
    samples = {
        "tips.csv.gz": gzip.compress(TIPS),
        "tips.csv.bz2": bz2.compress(TIPS),
        "tips.csv.xz": lzma.compress(TIPS),
        "tips.tsv.gz": gzip.compress(TIPS.replace(b",", b"\t")),
        "tips.csv.zip": zipped({"tips.csv": TIPS}),
        "download.gz": gzip_named(TIPS, "tips.csv"),  # the gzip header names the inner file
        "actually-gzip.csv": gzip.compress(TIPS),
        "mac.zip": zipped(
            {"tips.csv": TIPS, "__MACOSX/._tips.csv": b"\0\5\26\7", ".DS_Store": b"x"}
        ),
    }
    produce = (
        "import pyarrow as pa\n"
        f"data = {TIPS!r}\n"
        "for codec, name in (('zstd', 'tips.csv.zst'), ('lz4', 'tips.csv.lz4')):\n"
        "    with pa.CompressedOutputStream(name, codec) as out:\n"
        "        out.write(data)\n"
    )
    code = (
        "for name in ('tips.csv.gz', 'tips.csv.bz2', 'tips.csv.xz', 'tips.tsv.gz',\n"
        "             'tips.csv.zip', 'download.gz', 'actually-gzip.csv', 'mac.zip',\n"
        "             'tips.csv.zst', 'tips.csv.lz4'):\n"
        "    df = load_file(name)\n"
        "    print(name, list(df.columns), df['tip'].tolist())\n"
    )
    result = await load(code, samples, produce=produce)
    lines = ok(result)
    assert len(lines) == 10
    for line in lines:
        assert line.endswith("['total', 'tip'] [1.01, 1.66]"), line
    assert "'mac.zip' holds one file, 'tips.csv': loading it" in result.stderr


async def test_archives_of_several_files_give_name_to_object_within_bounds(load):
    many = zipped({f"part{i:02}.csv": f"n\n{i}\n".encode() for i in range(80)})
    samples = {
        "bundle.zip": zipped(
            {
                "data/tips.csv": TIPS,
                "README.txt": b"read me",
                "rows.json": b'[{"a": 1}, {"a": 2}]',
                "blob.bin": b"\0\1\2\3" * 8,
            }
        ),
        "both.tar.gz": tarred({"a.csv": b"x\n1\n", "b.csv": b"y\n2\n"}),
        "many.zip": many,
    }
    code = (
        "bundle = load_file('bundle.zip')\n"
        "print(sorted(bundle))\n"
        "print(bundle['data/tips.csv']['tip'].sum(), bundle['README.txt'], "
        "bundle['rows.json']['a'].tolist())\n"
        "both = load_file('both.tar.gz')\n"
        "print(sorted(both), both['b.csv']['y'].tolist())\n"
        "print(load_file('many.zip') == get_file_path('many.zip'))\n"
        "print(load_file('many.zip', member='part42.csv')['n'].tolist())\n"
    )
    result = await load(code, samples)
    assert ok(result) == [
        "['README.txt', 'data/tips.csv', 'rows.json']",
        "2.67 read me [1, 2]",
        "['a.csv', 'b.csv'] [2]",
        "True",
        "[42]",
    ]
    assert (
        "'bundle.zip': loaded 3 of its 4 files as {name: object}; skipped blob.bin" in result.stderr
    )
    assert "'many.zip' is a zip archive of 80 files: returning its path" in result.stderr
    assert "member='name'" in result.stderr


async def test_text_encodings_are_detected_over_the_whole_file(load):
    filler = b"id,city\n" + b"1,Springfield\n" * 8000  # > 64 KB of ASCII first
    samples = {
        "mac.csv": "ville;température\nMontréal;-5\nQuébec;-8\n".encode("mac_roman"),
        "greek.csv": "πόλη,θερμοκρασία\nΑθήνα,20\nΘεσσαλονίκη,15\n".encode("iso-8859-7"),
        "russian.csv": "город,население\nМосква,13\nКазань,1\n".encode("cp1251"),
        "koi8.csv": "город,население\nМосква,13\nКазань,1\n".encode("koi8_r"),
        "polish.csv": "miasto,opis\nŁódź,włókiennicze\nGdańsk,żurawie\n".encode("cp1250"),
        "japan.csv": "都市,人口\n東京,1400\n大阪,880\n".encode("cp932"),
        "wide.csv": "a,b\n1,é\n".encode("utf-16-le"),  # no byte-order mark
        "late.csv": filler + "2,Zürich\n".encode("cp1252"),
        "stray.csv": filler[: 91 * 1024] + b"\x81" + filler[91 * 1024 :] + "3,Málaga\n".encode(),
    }
    code = (
        "print(list(load_file('mac.csv').columns), load_file('mac.csv')['ville'].tolist())\n"
        "print(list(load_file('greek.csv').columns), load_file('greek.csv').iloc[:, 0].tolist())\n"
        "for name in ('russian.csv', 'koi8.csv'):\n"
        "    print(load_file(name)['город'].tolist())\n"
        "print(load_file('polish.csv')['miasto'].tolist())\n"
        "print(load_file('japan.csv')['都市'].tolist())\n"
        "print(load_file('wide.csv')['b'].tolist())\n"
        "print(load_file('late.csv')['city'].iloc[-1])\n"
        "stray = load_file('stray.csv')\n"
        "print(len(stray), stray['city'].iloc[-1], stray['city'].str.contains('\\ufffd').sum())\n"
        "try:\n"
        "    load_file('greek.csv', encoding='utf-8')\n"
        "except ValueError as e:\n"
        "    print(f'{type(e).__name__}: {e}')\n"
    )
    result = await load(code, samples)
    lines = ok(result)
    assert lines[:8] == [
        "['ville', 'température'] ['Montréal', 'Québec']",
        "['πόλη', 'θερμοκρασία'] ['Αθήνα', 'Θεσσαλονίκη']",
        "['Москва', 'Казань']",
        "['Москва', 'Казань']",
        "['Łódź', 'Gdańsk']",
        "['東京', '大阪']",
        "['é']",
        "Zürich",
    ]
    assert lines[8] == "8001 Málaga 1"
    assert lines[9].startswith("LoadError: load_file('greek.csv'): could not decode it as utf-8")
    assert "encoding=" in lines[9] and "get_file_path(" in lines[9]
    for name, encoding in (
        ("mac.csv", "mac_roman"),
        ("greek.csv", "iso-8859-7"),
        ("koi8.csv", "koi8_r"),
        ("japan.csv", "cp932"),
        ("late.csv", "cp1252"),
    ):
        assert f"'{name}': read as {encoding}, not UTF-8" in result.stderr, name
    assert (
        "'stray.csv': read as UTF-8; 1 invalid byte sequence(s) (the first at byte 93,184)"
        in result.stderr
    )


async def test_arrow_files_pandas_cannot_convert_keep_arrow_types(load):
    produce = (
        "import datetime, pyarrow as pa, pyarrow.parquet as pq, pyarrow.feather as feather\n"
        "import pyarrow.ipc as ipc\n"
        "stamps = pa.array([datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31)],\n"
        "                  pa.timestamp('us'))\n"
        "pq.write_table(pa.table({'ts': stamps}), 'spark.parquet',\n"
        "               use_deprecated_int96_timestamps=True)\n"
        "far = pa.table({'d': pa.array([2**31 - 1, 0], pa.date32())})  # year 5881580\n"
        "feather.write_feather(far, 'far.feather')\n"
        "pq.write_table(far, 'far.parquet')\n"
        "codes = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0]), pa.array(['a', None]))\n"
        "feather.write_feather(pa.table({'c': codes}), 'nulls.feather')\n"
        "union = pa.UnionArray.from_sparse(pa.array([0, 1, 0], pa.int8()),\n"
        "                                  [pa.array([1, 2, 3]), pa.array(['a', 'b', 'c'])])\n"
        "feather.write_feather(pa.table({'u': union, 'x': [1, 2, 3]}), 'union.arrow',\n"
        "                      compression='uncompressed')\n"
        "table = pa.table({'a': [1, 2, 3], 's': ['x', 'y', 'z']})\n"
        "zstd = ipc.IpcWriteOptions(compression='zstd')\n"
        "with ipc.new_stream('batches.arrows', table.schema, options=zstd) as w:\n"
        "    w.write_table(table)\n"
        "with ipc.new_stream('batches.stream', table.schema) as w:\n"
        "    w.write_table(table)\n"
    )
    code = (
        "print(load_file('spark.parquet')['ts'].dt.year.tolist())\n"
        "for name in ('far.feather', 'far.parquet'):\n"
        "    far = load_file(name)\n"
        "    print(far['d'].dtype, far['d'].iloc[1])\n"
        "print(load_file('nulls.feather')['c'].tolist())\n"
        "u = load_file('union.arrow')\n"
        "print(u['x'].tolist(), u['u'].tolist())\n"
        "for name in ('batches.arrows', 'batches.stream'):\n"
        "    t = load_file(name)\n"
        "    print(name, t['a'].tolist(), t['s'].tolist())\n"
    )
    result = await load(code, produce=produce)
    assert ok(result) == [
        "[1, 9999]",  # INT96 nanoseconds would have wrapped these
        "date32[day][pyarrow] 1970-01-01",
        "date32[day][pyarrow] 1970-01-01",
        "['a', <NA>, <NA>, 'a']",
        "[1, 2, 3] [1, 'b', 3]",
        "batches.arrows [1, 2, 3] ['x', 'y', 'z']",
        "batches.stream [1, 2, 3] ['x', 'y', 'z']",
    ]
    for name in ("far.feather", "far.parquet", "nulls.feather", "union.arrow"):
        assert f"'{name}': pandas could not convert its Arrow types" in result.stderr
        assert "dtype_backend='pyarrow'" in result.stderr


async def test_files_declaring_more_than_the_memory_are_refused_and_the_run_goes_on(load):
    bomb_member = gzip.compress(b"0,0\n" * 262144)  # 1 MiB of CSV each
    samples = {
        "bomb.csv.gz": bomb_member * 700,  # 700 MiB of CSV, more than the 512 MiB sandbox
        "huge.png": png_declaring(40000, 40000),
        "ok.csv": b"a\n1\n",
    }
    produce = (
        "import pyarrow as pa, pyarrow.parquet as pq\n"
        "pq.write_table(pa.table({'x': pa.nulls(300_000_000)}), 'huge.parquet',\n"
        "               row_group_size=64 * 1024 * 1024)\n"
    )
    code = (
        "for name in ('huge.parquet', 'bomb.csv.gz', 'huge.png'):\n"
        "    try:\n"
        "        load_file(name)\n"
        "    except ValueError as e:\n"
        "        print(f'{type(e).__name__}: {e}')\n"
        "print('still running', load_file('ok.csv')['a'].tolist())\n"
    )
    result = await load(code, samples, produce=produce)
    lines = ok(result)
    assert lines[-1] == "still running [1]"
    parquet, bomb, image = lines[:3]
    assert parquet.startswith(
        "TooLargeToLoadError: load_file('huge.parquet'): not loaded as "
        "Apache Parquet (parquet): its footer declares 300,000,000 rows"
    )
    assert "columns=[...]" in parquet and "get_file_path(" in parquet
    assert bomb.startswith(
        "TooLargeToLoadError: load_file('bomb.csv.gz'): not loaded as "
        "Comma-separated values (csv, gzip-compressed): it unpacks to more than"
    )
    assert image.startswith(
        "TooLargeToLoadError: load_file('huge.png'): not loaded as PNG image "
        "(png): "
        "it declares 1,600,000,000 pixels"
    )
    for line in (parquet, bomb, image):
        assert "more than this run's memory can hold" in line


async def test_formats_sharing_an_extension_are_told_apart_by_content(load):
    samples = {
        "idl.sav": idl_save([("ratio", 2.5), ("label", "hello"), ("counts", [1, 2, 3])]),
        "packed.sav": idl_save([("ratio", 0.5), ("counts", [4, 5])], compressed=True),
        "table.dat": b"  1.0  2.5  3\n  4.0  5.5  6\n  7.0  8.5  9\n",
        "weather.arff": b"% Weka\n@relation weather\n@attribute outlook {sunny,rainy}\n"
        b"@attribute temp numeric\n@data\nsunny,85\nrainy,?\n",
        "notes.arff": b"@relation notes\n@attribute text string\n@attribute score numeric\n"
        b"@data\n'hello world',1.5\n'bye',2\n",
        "towns.dbf": dbf_table(
            [
                ("NAME", "C", 12, 0),
                ("POP", "N", 8, 0),
                ("FOUNDED", "D", 8, 0),
                ("CAPITAL", "L", 1, 0),
            ],
            [
                (False, ["Zürich", 421878, "12180101", "F"]),
                (True, ["Gone", 1, "20000101", "F"]),
                (False, ["Genève", 203856, "", "T"]),
            ],
        ),
        "rows.avro": avro_file(
            [{"id": 1, "name": "a", "score": 0.5}, {"id": -7, "name": "bé", "score": None}]
        ),
    }
    produce = (
        "import numpy as np, pandas as pd, pyreadstat, scipy.io, h5py, msgpack\n"
        "pyreadstat.write_sav(pd.DataFrame({'age': [31.0, 45.0]}), 'spss.sav')\n"
        "people = pd.DataFrame({'name': ['Zoë', 'Ann'], 'age': [31.0, 45.0]})\n"
        "pyreadstat.write_xport(people, 'people.xpt', file_format_version=5)\n"
        "nc = scipy.io.netcdf_file('climate.nc', 'w')\n"
        "nc.createDimension('time', 3)\n"
        "temp = nc.createVariable('temp', 'f8', ('time',))\n"
        "temp[:] = [11.5, 12.5, 13.5]\n"
        "nc.close()\n"
        "with h5py.File('modern.nc', 'w') as f:\n"
        "    f['rain'] = np.array([0.0, 1.5])\n"
        "np.save('objects.npy', np.array([{'k': 1}, None, 'text'], dtype=object))\n"
        "np.savez('mixed.npz', names=np.array(['a', {'b': 2}], dtype=object), x=np.arange(3))\n"
        "rows = [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]\n"
        "open('rows.msgpack', 'wb').write(msgpack.packb(rows))\n"
        "open('stream.mpk', 'wb').write(msgpack.packb({'v': 1}) + msgpack.packb([2, 3]))\n"
    )
    code = (
        "idl = load_file('idl.sav')\n"
        "print(sorted(idl), float(idl['ratio']), idl['label'], idl['counts'].tolist())\n"
        "packed = load_file('packed.sav')\n"
        "print(float(packed['ratio']), packed['counts'].tolist())\n"
        "print(load_file('spss.sav')['age'].tolist())\n"
        "print(load_file('people.xpt')['name'].tolist())\n"
        "print(load_file('climate.nc')['temp'].tolist())\n"
        "print(load_file('modern.nc')['rain'].tolist())\n"
        "print(load_file('table.dat').values.tolist())\n"
        "w = load_file('weather.arff')\n"
        "print(w['outlook'].tolist(), w['temp'].tolist())\n"
        "n = load_file('notes.arff')\n"
        "print(n['text'].tolist(), n['score'].tolist())\n"
        "print(load_file('objects.npy').tolist())\n"
        "m = load_file('mixed.npz')\n"
        "print(m['names'].tolist(), m['x'].tolist())\n"
        "print(load_file('rows.msgpack').to_dict('records'))\n"
        "print(load_file('stream.mpk'))\n"
        "towns = load_file('towns.dbf')\n"
        "print(towns['NAME'].tolist(), towns['POP'].tolist(), towns['CAPITAL'].tolist(),\n"
        "      towns['FOUNDED'].iloc[0].year, towns['FOUNDED'].isna().tolist())\n"
        "print(load_file('rows.avro').to_dict('records'))\n"
    )
    result = await load(code, samples, produce=produce)
    assert ok(result) == [
        "['counts', 'label', 'ratio'] 2.5 b'hello' [1, 2, 3]",
        "0.5 [4, 5]",
        "[31.0, 45.0]",
        "['Zoë', 'Ann']",  # XPORT text comes back decoded, not as bytes
        "[11.5, 12.5, 13.5]",
        "[0.0, 1.5]",
        "[[1.0, 2.5, 3.0], [4.0, 5.5, 6.0], [7.0, 8.5, 9.0]]",
        "['sunny', 'rainy'] [85.0, nan]",
        "['hello world', 'bye'] [1.5, 2.0]",
        "[{'k': 1}, None, 'text']",
        "['a', {'b': 2}] [0, 1, 2]",
        "[{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]",
        "[{'v': 1}, [2, 3]]",
        "['Zürich', 'Genève'] [421878, 203856] [False, True] 1218 [False, True]",
        "[{'id': 1, 'name': 'a', 'score': 0.5}, {'id': -7, 'name': 'bé', 'score': nan}]",
    ]
    assert (
        "'idl.sav': its bytes say IDL save file (idl_save), not SPSS dataset (spss)"
        in result.stderr
    )
    assert "'towns.dbf': left out 1 record(s) marked as deleted" in result.stderr


async def test_images_pillow_recognises_by_content(load):
    samples = {
        "gray.ras": sun_raster(4, 2, bytes([0, 50, 100, 150, 200, 250, 255, 1])),
        "two.xpm": XPM,
        "plate.fits": fits_image(4, 3, bytes(range(12))),
        "raster-without-extension": sun_raster(2, 2, bytes([9, 9, 9, 9])),
    }
    produce = (
        "from PIL import Image\n"
        "im = Image.new('RGB', (6, 4), (200, 10, 30))\n"
        "im.save('red.sgi'); im.save('red.qoi'); im.save('red.tga')\n"
        "im.convert('P').save('red.blp', 'BLP')\n"
        "im.save('snapshot.bin', 'QOI'); im.save('frame.bin', 'PPM')\n"
    )
    code = (
        "for name in ('red.sgi', 'red.qoi', 'red.tga', 'red.blp', 'snapshot.bin', 'frame.bin'):\n"
        "    im = load_file(name)\n"
        "    pixel = im.convert('RGB').getpixel((1, 1))\n"
        "    # BLP holds a palette: the web palette's nearest colour\n"
        "    near = max(abs(a - b) for a, b in zip(pixel, (200, 10, 30))) < 32\n"
        "    print(name, im.format, im.size, near)\n"
        "for name in ('gray.ras', 'two.xpm', 'plate.fits', 'raster-without-extension'):\n"
        "    im = load_file(name)\n"
        "    print(name, im.format, im.size, im.convert('RGB').getpixel((1, 0)))\n"
    )
    result = await load(code, samples, produce=produce)
    assert ok(result) == [
        "red.sgi SGI (6, 4) True",
        "red.qoi QOI (6, 4) True",
        "red.tga TGA (6, 4) True",
        "red.blp BLP (6, 4) True",
        "snapshot.bin QOI (6, 4) True",
        "frame.bin PPM (6, 4) True",
        "gray.ras SUN (4, 2) (50, 50, 50)",
        "two.xpm XPM (2, 2) (0, 0, 255)",
        "plate.fits FITS (4, 3) (9, 9, 9)",
        "raster-without-extension SUN (2, 2) (9, 9, 9)",
    ]
    assert "'frame.bin' is an image Pillow recognises by its content (PPM)" in result.stderr


async def test_errors_name_the_file_the_type_and_the_fix(load):
    samples = {
        "broken.parquet": b"PAR1" + b"\x07" * 64 + b"PAR1",
        "broken.json": b'{"a": 1,}',
        "trunc.xlsx": b"PK\x03\x04" + b"\0" * 40,
        "bundle.zip": zipped({"good.csv": b"a\n1\n", "bad.parquet": b"PAR1junkPAR1"}),
    }
    code = (
        "for name in ('broken.parquet', 'broken.json', 'trunc.xlsx'):\n"
        "    try:\n"
        "        load_file(name)\n"
        "    except ValueError as e:\n"
        "        print(f'{type(e).__name__}: {e}')\n"
        "print(sorted(load_file('bundle.zip')))\n"
    )
    result = await load(code, samples)
    parquet, json_line, xlsx, bundle = ok(result)
    assert parquet.startswith(
        "LoadError: load_file('broken.parquet'): could not read it as Apache Parquet (parquet): "
    )
    assert json_line.startswith(
        "LoadError: load_file('broken.json'): could not read it as JSON (json): JSONDecodeError: "
    )
    assert "as_dataframe=False" in json_line
    assert xlsx.startswith(
        "LoadError: load_file('trunc.xlsx'): could not read it as Excel workbook (xlsx): "
    )
    assert "sheet='name'" in xlsx
    for line in (parquet, json_line, xlsx):
        assert "get_file_path('" in line and "to read it by hand" in line
    assert bundle == "['good.csv']"
    assert "skipped bad.parquet (could not read it as Apache Parquet" in result.stderr
    assert result.status is RunStatus.OK
