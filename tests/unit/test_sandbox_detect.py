"""The loader's content detection, run on the host: encodings, signatures, text formats,
delimiters, inner names of compressed files, and the missing-package message."""

import gzip
import io
import struct

import pytest
import sandbox_archives
import sandbox_detect as detect
import sandbox_errors
from sandbox_files import UserFile

# A few lines of real text per language, in the code pages each is commonly written in.
TEXTS = {
    "french": "ville,nom,remarque\n1,Montréal,Café très agréable près de la gare\n"
    "2,Québec,Hôtel fermé à Noël; réouverture prévue en été\n"
    "3,Genève,L’été dernier, il a fait très chaud — « canicule »\n",
    "german": "stadt;beschreibung;preis\nZürich;Größere Straße nahe dem Fluss;3,50 €\n"
    "München;Schöne Häuser, übermäßig teuer;4,20 €\nKöln;Dom und Brücken;2,10 €\n",
    "spanish": "ciudad,descripción\nMadrid,La capital de España, con museos y música\n"
    "Bogotá,¿Dónde está la estación? ¡Aquí!\nCórdoba,Mezquita y jardines del señor\n",
    "polish": "miasto,opis\nŁódź,Miasto włókiennicze w centralnej Polsce\n"
    "Gdańsk,Port nad Bałtykiem, żurawie i bursztyn\nWrocław,Miasto stu mostów\n",
    "czech": "město,popis\nPraha,Hlavní město České republiky, řeka Vltava\n"
    "Brno,Druhé největší město, výstaviště a hrad Špilberk\nPlzeň,Pivovar a pivo\n",
    "russian": "город,описание\nМосква,Столица России, большой и шумный город\n"
    "Казань,Город на Волге, кремль и мечеть\nНовосибирск,Крупнейший город Сибири\n",
    "greek": "πόλη,περιγραφή\nΑθήνα,Η πρωτεύουσα της Ελλάδας με την Ακρόπολη\n"
    "Θεσσαλονίκη,Μεγάλη πόλη στο βορρά, λιμάνι και κάστρα\nΠάτρα,Πόλη με καρναβάλι\n",
    "turkish": "şehir,açıklama\nİstanbul,Türkiye'nin en büyük şehri, boğaz ve köprüler\n"
    "Ankara,Başkent, Anıtkabir ve geniş caddeler\nBursa,Yeşil şehir, ipek çarşısı\n",
    "hebrew": "עיר,תיאור\nירושלים,עיר הבירה של ישראל, העיר העתיקה\nחיפה,עיר נמל על הכרמל\n",
    "arabic": "مدينة,وصف\nالقاهرة,عاصمة مصر وأكبر مدنها\nبيروت,عاصمة لبنان على البحر المتوسط\n",
    "japanese": "都市,説明\n東京,日本の首都で、とても大きな都市です。\n"
    "京都,古いお寺や神社がたくさんあります。\n札幌,冬は雪が多く、ビールが有名です。\n",
    "chinese": "城市,描述\n北京,中国的首都，有很多历史古迹。\n上海,中国最大的经济中心城市之一。\n"
    "成都,以大熊猫和火锅闻名的城市。\n",
    "taiwanese": "城市,描述\n台北,台灣的首都，有很多美食和夜市。\n高雄,南部的重要港口城市。\n",
    "korean": "도시,설명\n서울,대한민국의 수도이며 가장 큰 도시입니다.\n"
    "부산,남쪽의 항구 도시로 해변이 유명합니다.\n",
    "hungarian": "város,leírás\nBudapest,Magyarország fővárosa a Duna partján\n"
    "Győr,Gyönyörű belváros és bazilika, műemlékek\n",
}
CASES = [
    ("french", "cp1252"),
    ("french", "mac_roman"),
    ("french", "utf-8"),
    ("german", "cp1252"),
    ("german", "mac_roman"),
    ("spanish", "cp850"),
    ("polish", "cp1250"),
    ("polish", "iso-8859-2"),
    ("czech", "cp1250"),
    ("russian", "cp1251"),
    ("russian", "koi8_r"),
    ("russian", "cp866"),
    ("greek", "iso-8859-7"),
    ("greek", "cp1253"),
    ("turkish", "cp1254"),
    ("hebrew", "cp1255"),
    ("arabic", "cp1256"),
    ("japanese", "cp932"),
    ("japanese", "euc_jp"),
    ("chinese", "gb18030"),
    ("taiwanese", "big5"),
    ("korean", "cp949"),
    ("hungarian", "iso-8859-2"),
    ("german", "utf-16"),
    ("greek", "utf-8-sig"),
]


@pytest.mark.parametrize("language, encoding", CASES)
def test_encoding_is_detected_so_the_text_reads_right(language, encoding):
    data = TEXTS[language].encode(encoding, errors="replace")
    guess = detect.detect_encoding(io.BytesIO(data), "x.csv")
    assert data.decode(guess.encoding, guess.errors) == data.decode(encoding)
    assert guess.size == len(data)
    if encoding in ("utf-8", "utf-16", "utf-8-sig"):
        assert guess.note is None
    else:
        assert guess.note.startswith(f"x.csv: read as {guess.encoding}, not UTF-8")


def test_the_whole_file_is_checked_not_only_its_start():
    ascii_rows = b"id,city\n" + b"1,Springfield\n" * 10000  # 140 KB
    late = detect.detect_encoding(io.BytesIO(ascii_rows + "2,Zürich\n".encode("cp1252")))
    assert late.encoding == "cp1252"
    stray = ascii_rows[:93184] + b"\x81" + ascii_rows[93184:] + "3,Málaga\n".encode()
    guess = detect.detect_encoding(io.BytesIO(stray), "s.csv")
    assert (guess.encoding, guess.errors) == ("utf-8", "replace")
    assert "the first at byte 93,184" in guess.note and "encoding=" in guess.note


def test_utf16_without_a_byte_order_mark_and_binary_that_is_not():
    assert (
        detect.detect_encoding(io.BytesIO("a,b\n1,é\n".encode("utf-16-le"))).encoding == "utf-16-le"
    )
    assert not detect.looks_like_text(b"\x00\x01\x02\x03" * 20)
    assert detect.looks_like_text("a,b\n".encode("utf-16-be"))


def _ole2(names: list[str]) -> bytes:
    header = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    header[30:32] = struct.pack("<H", 9)  # 512-byte sectors
    header[48:52] = struct.pack("<i", 0)  # the directory starts in sector 0
    directory = bytearray()
    for name in names:
        entry = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        entry[: len(encoded)] = encoded
        entry[64:66] = struct.pack("<H", len(encoded))
        directory += entry
    return bytes(header + directory)


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"PAR1\x15\x04", "parquet"),
        (b"ARROW1\x00\x00", "feather"),
        (b"\xff\xff\xff\xff\xa8\x00\x00\x00" + b"\x10" * 8, "arrow_stream"),
        (b"SR\x00\x04\x00\x00\x00\x0a", "idl_save"),
        (b"$FL2@(#) SPSS", "spss"),
        (b"CDF\x01\x00\x00\x00\x00", "netcdf3"),
        (b"CDF\x05\x00", "netcdf_cdf5"),
        (b"\x00" * 512 + b"\x89HDF\r\n\x1a\n", "hdf5"),  # after a user block
        (b"\x00" * 12 + b"\xc2\xea\x81\x60" + b"\x00" * 16, "sas"),
        (b"\x00" * 12 + b"\xc2\xea\x81\x63" + b"\x00" * 16, "sas_catalog"),
        (b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!000", "xport"),
        (b"r\x02\x01\x00\x01\x00", "stata"),
        (b"<stata_dta><header>", "stata"),
        (b"\x93NUMPY\x01\x00", "npy"),
        (b"qoif\x00\x00\x00\x04", "qoi"),
        (b"\x59\xa6\x6a\x95" + b"\x00" * 28, "sun_raster"),
        (b"BLP2\x01", "blp"),
        (b"\x01\xda\x00\x01\x00\x03", "sgi"),
        (b"/* XPM */\nstatic", "xpm"),
        (b"SIMPLE  =                    T / conforms", "fits"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", "avif"),
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", "wav"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x00" * 257 + b"ustar\x0000", "tar"),
        (b"plain words, nothing more", None),
    ],
)
def test_signatures(head, expected):
    assert detect.sniff(head) == expected


def test_signatures_that_need_more_than_the_first_bytes():
    assert detect.sniff(b"\x80\x04\x95\x10", tail=b"\x94.") == "pickle"
    assert detect.sniff(b"\x80\x04\x95\x10", tail=b"\x00\x01") is None
    assert detect.sniff(b"ORC\x0a", tail=b"\x08\x03ORC\x17") == "orc"
    assert detect.sniff(b"ORC is a word", tail=b"that ends.") is None
    assert detect.sniff(_ole2(["Root Entry", "Workbook"])) == "xls"
    assert detect.sniff(_ole2(["Root Entry", "WordDocument"])) == "doc"
    assert (
        detect.sniff(_ole2(["Root Entry", "EncryptionInfo", "EncryptedPackage"]))
        == "encrypted_office"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("% Weka\n@RELATION iris\n@ATTRIBUTE a NUMERIC\n", "arff"),
        ('{"a": 1}\n{"a": 2}\n{"a": 3}\n', "jsonl"),
        ('{"a": [1, 2]}', "json"),
        ("<?xml version='1.0'?><root/>", "xml"),
        ("<svg xmlns='http://www.w3.org/2000/svg'></svg>", "svg"),
        ("<!DOCTYPE html><html><table></table>", "html"),
        ("a,b\n1,2\n3,4\n", "csv"),
        ("a\tb\n1\t2\n3\t4\n", "tsv"),
        ("  1.0  2.5\n  3.0  4.5\n  5.0  6.5\n", "csv"),
        ("Dear reader, this is prose.\nIt has commas, here and there, unevenly.\nThe end.\n", None),
        ("just one line, with a comma\n", None),
    ],
)
def test_text_formats(text, expected):
    assert detect.sniff_text(text) == expected


def test_delimiters_and_preamble_lines():
    assert detect.sniff_delimiter("a;b;c\n1;2;3\n4;5;6\n", ",") == ";"
    assert detect.sniff_delimiter("a|b\n1|2\n", ",") == "|"
    assert detect.sniff_delimiter("  1  2  3\n  4  5  6\n  7  8  9\n", ",") == r"\s+"
    assert detect.sniff_delimiter("no delimiter here\n", ",") == ","
    preamble = (
        '"Data Source","World Development Indicators",\n\n'
        '"Last Updated Date","2020-01-01",\n\ncountry,code,y1,y2\nAruba,ABW,1,2\n'
        "Chad,TCD,3,4\nPeru,PER,5,6\n"
    )
    assert detect.header_row(preamble, ",") == 4
    assert detect.header_row("a,b\n1,2\n3,4\n5,6\n", ",") == 0


def test_inner_names_of_compressed_files():
    head = gzip.compress(b"x")
    assert sandbox_archives.inner_name("tips.csv.gz", "gzip", head) == "tips.csv"
    assert sandbox_archives.inner_name("backup.tgz", "gzip", head) == "backup.tar"
    assert sandbox_archives.inner_name("DATA.CSV.BZ2", "bzip2", b"") == "DATA.CSV"
    named = io.BytesIO()
    with gzip.GzipFile(filename="sales.csv", mode="wb", fileobj=named) as fh:
        fh.write(b"a\n")
    assert sandbox_archives.inner_name("download.gz", "gzip", named.getvalue()) == "sales.csv"
    assert detect.gzip_original_name(named.getvalue()) == "sales.csv"


def test_memory_budget_is_free_bytes_within_the_limit():
    free, limit = detect.memory_budget()
    assert free is None or free >= 0
    if free is not None and limit is not None:
        assert free <= limit + (1 << 30)  # page cache counts as free, within reason


def _shapefile_source():
    entry = UserFile("f1", "parcels.shp", "shapefile", 10, "/mnt/data/f1.shp", "geospatial")
    source = sandbox_archives.Source(entry, entry.name, entry.type, path=entry.path)
    return source


@pytest.mark.parametrize(
    "approved, says",
    [
        (
            {"geopandas": "geopandas"},
            "geopandas is an approved package: add `import geopandas` to the code and run it again",
        ),
        ({"plotly": "plotly"}, "geopandas is not on this bot's approved package list"),
        (None, "If geopandas is on this bot's approved package list, adding `import geopandas`"),
    ],
)
def test_a_missing_package_says_whether_importing_it_would_install_it(approved, says, monkeypatch):
    monkeypatch.setattr(sandbox_errors, "approved", approved)
    message = str(sandbox_errors.missing("geopandas", "geopandas", _shapefile_source()))
    assert message.startswith(
        "load_file('parcels.shp'): reading shapefile files needs the "
        "Python package geopandas, which is not installed"
    )
    assert "ESRI shapefile geometry (shapefile)" in message
    assert says in message
