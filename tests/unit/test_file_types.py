"""The type table: size, detection by extension and magic bytes, one source for the loader."""

import json
from pathlib import Path

import pytest
import sandbox_files

from app.chat.run_files import typed_input
from app.files.types import (
    CATEGORIES,
    FILE_TYPES,
    TYPES_BY_NAME,
    describe_types,
    detect_type,
    file_type_for,
    is_supported,
    loader_table,
)
from app.sandbox.result import InputFile

ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def test_at_least_200_extensions_in_named_categories():
    assert len(FILE_TYPES) >= 200
    assert {t.category for t in FILE_TYPES.values()} <= set(CATEGORIES)
    for required in (
        "tabular",
        "structured",
        "array",
        "image",
        "audio",
        "video",
        "code",
        "document",
        "geospatial",
        "archive",
    ):
        assert sum(t.category == required for t in FILE_TYPES.values()) >= 5, required
    assert all(ext.startswith(".") and ext == ext.lower() for ext in FILE_TYPES)


@pytest.mark.parametrize(
    "name, head, expected",
    [
        ("sales.csv", b"a,b\n1,2\n", "csv"),
        ("SALES.CSV", b"a,b\n1,2\n", "csv"),
        ("sales.csv", ZIP, "zip"),  # a .csv that is really a ZIP is reported as such
        ("book.xlsx", ZIP, "xlsx"),  # ZIP is what an xlsx is
        ("arrays.npz", ZIP, "npz"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 20, "xls"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        ("photo.jpg", PNG, "png"),
        ("photo.png", b"just some words\n", "text"),  # claims PNG, is text
        ("data.parquet", b"PAR1\x15\x04", "parquet"),
        ("data.json", b"PAR1\x15\x04\x00\x00", "parquet"),
        ("db.sqlite", b"SQLite format 3\x00", "sqlite"),
        ("map.gpkg", b"SQLite format 3\x00", "gpkg"),
        ("notes.txt", b"ID3 is the name of a tag format", "text"),  # weak signature in text
        ("notes.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "pdf"),
        ("no_extension", PNG, "png"),
        ("no_extension", b"hello world", "text"),
        ("no_extension", b"\x00\x01\x02\x03", "binary"),
        ("weird.qqq", "h\u00e9llo".encode(), "text"),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "mp4"),
        ("clip.mov", b"\x00\x00\x00\x14ftypqt  ", "mov"),
        ("song.wav", b"RIFF\x24\x08\x00\x00WAVEfmt ", "wav"),
        ("x.tar", b"\x00" * 257 + b"ustar\x0000", "tar"),
        ("empty.csv", b"", "csv"),
        ("weather.arff", b"@relation weather\n", "arff"),
        ("formats.sas7bcat", b"\x00" * 12 + b"\xc2\xea\x81\x63" + b"\x00" * 40, "sas_catalog"),
        ("no_extension", b"\x00" * 12 + b"\xc2\xea\x81\x63" + b"\x00" * 40, "sas_catalog"),
        ("batches.arrows", b"\xff\xff\xff\xff\xa8\x00\x00\x00", "arrow_stream"),
        ("sprite.qoi", b"qoif\x00\x00\x00\x04", "qoi"),
        ("no_extension", b"qoif\x00\x00\x00\x04", "qoi"),
        ("photo.ras", b"\x59\xa6\x6a\x95" + b"\x00" * 28, "sun_raster"),
        ("texture.blp", b"BLP2\x01\x00", "blp"),
        ("icon.xpm", b"/* XPM */\nstatic char *x[] = {\n", "xpm"),
        ("scan.sgi", b"\x01\xda\x00\x01\x00\x03", "sgi"),
    ],
)
def test_detect_type(name, head, expected):
    assert detect_type(name, head).type == expected


def test_is_supported():
    assert is_supported("a.parquet") and is_supported("B.JPEG") and is_supported("x.tar.gz")
    assert not is_supported("a.qqq") and not is_supported("Makefile_without_dot")


def test_describe_types_lists_every_category_used():
    text = describe_types()
    for category in {t.category for t in FILE_TYPES.values()}:
        assert CATEGORIES[category] in text
    assert ".parquet" in text and ".geojson" in text


def test_the_sandbox_loader_only_uses_names_from_the_table():
    # The loader in the image keys on the table's names: a renamed type would silently lose its
    # reader, so every name the loader knows must exist here.
    assert set(sandbox_files._LOADERS_BY_TYPE) <= set(TYPES_BY_NAME)
    assert set(sandbox_files._LOADERS_BY_CATEGORY) <= set(CATEGORIES)


def test_every_type_has_a_reader_or_a_category_fallback():
    uncovered = [
        name
        for name, t in TYPES_BY_NAME.items()
        if name not in sandbox_files._LOADERS_BY_TYPE
        and t.category not in sandbox_files._LOADERS_BY_CATEGORY
    ]
    # These fall back to text or bytes by content, with a note.
    assert set(uncovered) <= {
        "env",
        "protobuf",
        "zarr",
        "tfrecord",
        "edf",
        "mdb",
        "doc",
        "ppt",
        "odp",
        "msg",
        "pages",
        "ps",
        "djvu",
        "prj",
        "shapefile_index",
        "kmz",
        "osm",
        "wkt",
        "topojson",
    }, uncovered


def test_the_images_copy_of_the_table_is_current():
    # The loader names what it finds inside archives with this copy; regenerate it with
    # python -c "import app.files.types as t; t.write_loader_table()"
    copy = Path(sandbox_files.__file__).with_name("sandbox_types.json")
    assert json.loads(copy.read_text()) == loader_table()


def test_manifest_entries_carry_the_tables_type_and_category():
    entry = typed_input("f1", "photo.JPG", "f1.jpg", 3).manifest_entry()
    assert (entry["type"], entry["category"]) == ("jpeg", "image")
    given = InputFile(
        file_id="f2", name="a.csv", filename="f2.zip", size=3, type="zip", category="archive"
    ).manifest_entry()
    assert (given["type"], given["category"]) == ("zip", "archive")
    assert file_type_for("a.tar.gz").type == "gzip"
