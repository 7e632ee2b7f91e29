"""Detection of imports (parsed, not grepped) and of the module a failed run was missing."""

import pytest

from app.sandbox.packages.detect import imports_in, missing_module


def test_imports_anywhere_in_the_code_are_found():
    code = (
        "import numpy as np, os.path\n"
        "from sklearn.linear_model import LinearRegression\n"
        "def f():\n"
        "    import yaml\n"
        "try:\n"
        "    import toolz\n"
        "except ImportError:\n"
        "    toolz = None\n"
        "class C:\n"
        "    from bs4 import BeautifulSoup\n"
    )
    assert imports_in(code) == {"numpy", "os", "sklearn", "yaml", "toolz", "bs4"}


def test_literal_dynamic_imports_are_found_and_computed_ones_are_not():
    code = (
        "import importlib\n"
        "importlib.import_module('cv2')\n"
        "__import__('skimage.io')\n"
        "importlib.import_module('x' + 'y')\n"
        "importlib.import_module('.relative', 'pkg')\n"
    )
    assert imports_in(code) == {"importlib", "cv2", "skimage"}


def test_relative_imports_and_words_in_strings_or_comments_are_not_imports():
    code = "from . import sibling\nfrom .mod import thing\n# import plotly\ntext = 'import bokeh'\n"
    assert imports_in(code) == set()


@pytest.mark.parametrize("code", ["import (", "print('a'", "x = \x00", "(" * 300 + ")" * 300])
def test_code_that_does_not_parse_has_no_imports(code):
    assert imports_in(code) == set()


@pytest.mark.parametrize(
    "stderr, expected",
    [
        (
            'Traceback (most recent call last):\n  File "<code>", line 1, in <module>\n'
            "ModuleNotFoundError: No module named 'toolz'\n",
            "toolz",
        ),
        ("ModuleNotFoundError: No module named 'more_itertools'\n\n", "more_itertools"),
        # only a submodule is missing: the package exists, installing cannot help
        ("ModuleNotFoundError: No module named 'sklearn.nope'\n", None),
        # not the final error: the code went on and failed for another reason
        ("ModuleNotFoundError: No module named 'toolz'\nValueError: bad\n", None),
        ("ImportError: cannot import name 'x' from 'y'\n", None),
        ("", None),
    ],
)
def test_missing_module_comes_from_the_final_traceback_line(stderr, expected):
    assert missing_module(stderr) == expected
