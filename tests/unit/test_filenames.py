import pytest

from app.filenames import safe_filename, unique_name


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("report.csv", "report.csv"),
        ("../../etc/passwd", "_._etc_passwd"),
        ("report..final.csv", "report.final.csv"),
        ("\u2025/secret", "_secret"),  # two-dot leader folds to ".."
        ("..", "file"),
        ("...", "file"),
        ("", "file"),
        ("/", "file"),
        ("a/b\\c.txt", "a_b_c.txt"),
        (
            "\uff0e\uff0e\uff0fsecret",
            "_secret",
        ),  # full-width ../ folds to ASCII, then is neutralised
        ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override dropped
        ("zero\u200bwidth.txt", "zerowidth.txt"),
        ("bell\x07\x00null.txt", "bellnull.txt"),
        ("@everyone.png", "_everyone.png"),
        ("  .hidden  ", "hidden"),
        ("r\u00e9sum\u00e9.pdf", "r\u00e9sum\u00e9.pdf"),
        ("re\u0301sume\u0301.pdf", "r\u00e9sum\u00e9.pdf"),  # NFC first
        ("\u6570\u636e.csv", "\u6570\u636e.csv"),
    ],
)
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected


def test_long_names_keep_their_extension():
    name = safe_filename("x" * 500 + ".parquet")
    assert len(name) <= 120 and name.endswith(".parquet")


@pytest.mark.parametrize("raw", ["a/b", "..", "\uff0f", "x\u2024\u2024y", "C:\\evil", "con:1"])
def test_result_is_always_one_plain_component(raw):
    name = safe_filename(raw)
    assert "/" not in name and "\\" not in name and ".." not in name and name


def test_unique_name():
    assert unique_name("a.png", set()) == "a.png"
    assert unique_name("a.png", {"A.PNG"}) == "a-2.png"
    assert unique_name("a.png", {"a.png", "a-2.png"}) == "a-3.png"
    assert unique_name("README", {"README"}) == "README-2"
