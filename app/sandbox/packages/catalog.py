"""What may be installed: the approved distributions, their import names, and what each is for.

The admin can replace the approved list (PACKAGE_APPROVED) and add import-name mappings
(PACKAGE_IMPORT_NAMES), both parsed by the settings and handed to `PackageCatalog.build`; the
defaults below are the usual data-science extras a model reaches for.
The "need" of each package lets a refusal name approved alternatives instead of just saying no.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Needs, in the order a refusal lists them.
PLOTTING = "plotting and charts"
ML = "machine learning"
STATS = "statistics and time series"
TEXT = "text and language"
MATH = "math, graphs and optimization"
OFFICE = "documents and spreadsheets"
DATA = "data formats and tables"
IMAGES = "images, audio and signals"
SCIENCE = "science (medical, astronomy, biology, units)"
GEO = "maps and geodata"
TOOLS = "general utilities"
OTHER = "other needs"

# distribution -> need. Distributions the image already has are listed too: approving them costs
# nothing (nothing is installed) and keeps the refusal hints complete. Installs take wheels only,
# so a package published only as source (e.g. langdetect) cannot be on this list.
DEFAULT_APPROVED: dict[str, str] = {
    "plotly": PLOTTING,
    "bokeh": PLOTTING,
    "altair": PLOTTING,
    "plotnine": PLOTTING,
    "wordcloud": PLOTTING,
    "missingno": PLOTTING,
    "squarify": PLOTTING,
    "mplfinance": PLOTTING,
    "matplotlib-venn": PLOTTING,
    "adjusttext": PLOTTING,
    "pygal": PLOTTING,
    "xgboost": ML,
    "lightgbm": ML,
    "catboost": ML,
    "imbalanced-learn": ML,
    "umap-learn": ML,
    "hdbscan": ML,
    "optuna": ML,
    "shap": ML,
    "mlxtend": ML,
    "category-encoders": ML,
    "scikit-learn": ML,
    "statsmodels": STATS,
    "pingouin": STATS,
    "lifelines": STATS,
    "pmdarima": STATS,
    "arch": STATS,
    "scikit-posthocs": STATS,
    "linearmodels": STATS,
    "factor-analyzer": STATS,
    "nltk": TEXT,
    "textblob": TEXT,
    "gensim": TEXT,
    "rapidfuzz": TEXT,
    "unidecode": TEXT,
    "emoji": TEXT,
    "ftfy": TEXT,
    "jellyfish": TEXT,
    "regex": TEXT,
    "markdown": TEXT,
    "sympy": MATH,
    "mpmath": MATH,
    "networkx": MATH,
    "python-igraph": MATH,
    "pulp": MATH,
    "cvxpy": MATH,
    "ortools": MATH,
    "openpyxl": OFFICE,
    "xlsxwriter": OFFICE,
    "python-docx": OFFICE,
    "python-pptx": OFFICE,
    "pypdf": OFFICE,
    "pdfplumber": OFFICE,
    "reportlab": OFFICE,
    "pyxlsb": OFFICE,
    "polars": DATA,
    "duckdb": DATA,
    "pyjanitor": DATA,
    "xmltodict": DATA,
    "beautifulsoup4": DATA,
    "html5lib": DATA,
    "jsonschema": DATA,
    "chardet": DATA,
    "tabulate": DATA,
    "pyyaml": DATA,
    "pyarrow": DATA,
    "opencv-python-headless": IMAGES,
    "scikit-image": IMAGES,
    "imageio": IMAGES,
    "pywavelets": IMAGES,
    "librosa": IMAGES,
    "qrcode": IMAGES,
    "pillow": IMAGES,
    "pydicom": SCIENCE,
    "nibabel": SCIENCE,
    "astropy": SCIENCE,
    "biopython": SCIENCE,
    "pint": SCIENCE,
    "uncertainties": SCIENCE,
    "geopandas": GEO,
    "shapely": GEO,
    "pyproj": GEO,
    "folium": GEO,
    "toolz": TOOLS,
    "more-itertools": TOOLS,
    "tqdm": TOOLS,
    "rich": TOOLS,
    "sortedcontainers": TOOLS,
    "faker": TOOLS,
    "humanize": TOOLS,
}

# Import names that differ from their distribution's name (after normalization).
DEFAULT_IMPORT_NAMES: dict[str, str] = {
    "yaml": "pyyaml",
    "cv2": "opencv-python-headless",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "imblearn": "imbalanced-learn",
    "umap": "umap-learn",
    "matplotlib_venn": "matplotlib-venn",
    "adjustText": "adjusttext",
    "category_encoders": "category-encoders",
    "scikit_posthocs": "scikit-posthocs",
    "factor_analyzer": "factor-analyzer",
    "igraph": "python-igraph",
    "janitor": "pyjanitor",
    "pywt": "pywavelets",
    "Bio": "biopython",
    "more_itertools": "more-itertools",
}

# Popular packages that are NOT approved by default, with the need they serve, so a refusal can
# point at what is available. "network" marks packages useless without network access.
NETWORK = "network access"
KNOWN_NEEDS: dict[str, str] = {
    "torch": ML,
    "tensorflow": ML,
    "keras": ML,
    "jax": ML,
    "transformers": TEXT,
    "spacy": TEXT,
    "sentence_transformers": TEXT,
    "langdetect": TEXT,
    "prophet": STATS,
    "fbprophet": STATS,
    "sktime": STATS,
    "seaborn_image": PLOTTING,
    "pygwalker": PLOTTING,
    "dash": PLOTTING,
    "streamlit": PLOTTING,
    "gradio": PLOTTING,
    "docx2txt": OFFICE,
    "fitz": OFFICE,
    "pymupdf": OFFICE,
    "PyPDF2": OFFICE,
    "tabula": OFFICE,
    "camelot": OFFICE,
    "rasterio": GEO,
    "fiona": GEO,
    "cartopy": GEO,
    "basemap": GEO,
    "mpl_toolkits.basemap": GEO,
    "requests": NETWORK,
    "httpx": NETWORK,
    "urllib3": NETWORK,
    "aiohttp": NETWORK,
    "selenium": NETWORK,
    "scrapy": NETWORK,
    "yfinance": NETWORK,
    "openai": NETWORK,
    "tweepy": NETWORK,
    "boto3": NETWORK,
    "wikipedia": NETWORK,
    "pandas_datareader": NETWORK,
}


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of -, _ and . become one -."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@dataclass(frozen=True)
class PackageCatalog:
    approved: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_APPROVED))
    """normalized distribution -> need"""
    import_names: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMPORT_NAMES))
    """import name -> normalized distribution"""

    @classmethod
    def build(
        cls, approved: Sequence[str] = (), import_names: Mapping[str, str] | None = None
    ) -> PackageCatalog:
        """The admin's list (normalized names; empty: the built-in one) and extra mappings."""
        chosen = (
            {normalize(name): DEFAULT_APPROVED.get(normalize(name), OTHER) for name in approved}
            if approved
            else dict(DEFAULT_APPROVED)
        )
        extra = {module: normalize(dist) for module, dist in (import_names or {}).items()}
        return cls(chosen, {**DEFAULT_IMPORT_NAMES, **extra})

    def approved_imports(self) -> dict[str, str]:
        """Import name -> approved distribution, for the loader's "import X installs it" hint."""
        names = {dist.replace("-", "_"): dist for dist in self.approved}
        names.update({m: d for m, d in self.import_names.items() if d in self.approved})
        return names

    def distribution(self, module: str) -> str:
        """The distribution that provides a top-level import name (approved or not)."""
        return self.import_names.get(module) or normalize(module)

    def is_approved(self, module: str) -> bool:
        return self.distribution(module) in self.approved

    def refusal(self, module: str) -> str:
        """What the model should be told when `module` is missing and may not be installed."""
        dist = self.distribution(module)
        head = (
            f"package {dist!r} (import {module}) is not on the approved list, so it cannot be "
            "installed in the sandbox"
        )
        need = KNOWN_NEEDS.get(module) or KNOWN_NEEDS.get(dist)
        if need == NETWORK:
            return (
                f"{head}; the sandbox has no network access, so code cannot download anything: "
                "work with the attached files instead"
            )
        if need:
            return f"{head}; approved packages for {need}: {', '.join(self.for_need(need))}"
        close = difflib.get_close_matches(dist, list(self.approved), n=3, cutoff=0.75)
        if close:
            return f"{head}; did you mean {', '.join(close)}?"
        examples = "; ".join(f"{n}: {', '.join(self.for_need(n)[:4])}" for n in self.needs())
        return f"{head}; approved packages include {examples}"

    def needs(self) -> list[str]:
        return sorted(set(self.approved.values()), key=_need_order)

    def for_need(self, need: str) -> list[str]:
        return sorted(name for name, kind in self.approved.items() if kind == need)


_ORDER = [PLOTTING, ML, STATS, TEXT, MATH, OFFICE, DATA, IMAGES, SCIENCE, GEO, TOOLS, OTHER]


def _need_order(need: str) -> int:
    return _ORDER.index(need) if need in _ORDER else len(_ORDER)
