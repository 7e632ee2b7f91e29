"""The approved list, import-name mapping, settings overrides and refusal messages."""

import pytest
from pydantic import ValidationError

from app.config import Settings, describe_errors
from app.sandbox.packages.catalog import DEFAULT_APPROVED, PackageCatalog, normalize


def test_default_list_is_large_and_covers_the_usual_packages():
    assert len(DEFAULT_APPROVED) >= 60
    for dist in (
        "statsmodels",
        "plotly",
        "bokeh",
        "altair",
        "xgboost",
        "lightgbm",
        "nltk",
        "wordcloud",
        "networkx",
        "sympy",
        "toolz",
        "rich",
        "tqdm",
        "openpyxl",
        "xlsxwriter",
        "pydicom",
        "nibabel",
        "astropy",
        "geopandas",
    ):
        assert dist in DEFAULT_APPROVED
    assert all(name == normalize(name) for name in DEFAULT_APPROVED)


@pytest.mark.parametrize(
    "module, dist",
    [
        ("yaml", "pyyaml"),
        ("cv2", "opencv-python-headless"),
        ("sklearn", "scikit-learn"),
        ("PIL", "pillow"),
        ("bs4", "beautifulsoup4"),
        ("skimage", "scikit-image"),
        ("docx", "python-docx"),
        ("more_itertools", "more-itertools"),
        ("toolz", "toolz"),
    ],
)
def test_import_names_map_to_approved_distributions(module, dist):
    catalog = PackageCatalog()
    assert catalog.distribution(module) == dist
    assert catalog.is_approved(module)


def test_settings_replace_the_list_and_add_mappings():
    settings = Settings(
        _env_file=None,
        package_approved="toolz, My_Package",
        package_import_names="mypkg=My_Package",
    )
    catalog = PackageCatalog.build(settings.approved_packages, settings.package_import_mapping)
    assert set(catalog.approved) == {"toolz", "my-package"}
    assert catalog.is_approved("mypkg") and catalog.is_approved("toolz")
    assert not catalog.is_approved("plotly")
    assert catalog.distribution("cv2") == "opencv-python-headless"  # built-in mappings stay


def test_empty_setting_means_the_built_in_list():
    catalog = PackageCatalog.build((), {})
    assert catalog.approved == DEFAULT_APPROVED


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PACKAGE_APPROVED": "toolz, not a name"}, "PACKAGE_APPROVED"),
        ({"PACKAGE_IMPORT_NAMES": "cv2"}, "PACKAGE_IMPORT_NAMES"),
        ({"PACKAGE_CA_BUNDLE": "/nonexistent/ca.pem"}, "PACKAGE_CA_BUNDLE"),
        ({"PACKAGE_INSTALL_TIMEOUT": "0"}, "PACKAGE_INSTALL_TIMEOUT"),
        ({"PACKAGE_CACHE_DAYS": "-1"}, "PACKAGE_CACHE_DAYS"),
    ],
)
def test_invalid_package_settings_name_the_variable(monkeypatch, env, variable):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    [line] = describe_errors(info.value)
    assert variable in line


def test_refusal_names_approved_packages_for_the_same_need():
    message = PackageCatalog().refusal("torch")
    assert "'torch'" in message and "not on the approved list" in message
    assert "machine learning" in message and "xgboost" in message and "lightgbm" in message


def test_refusal_for_a_network_package_says_there_is_no_network():
    message = PackageCatalog().refusal("requests")
    assert "no network" in message and "attached files" in message


def test_refusal_suggests_close_names_or_lists_needs():
    assert "did you mean plotly" in PackageCatalog().refusal("plotlyy")
    generic = PackageCatalog().refusal("zzqx_unknown")
    assert "plotting and charts:" in generic and "machine learning:" in generic
