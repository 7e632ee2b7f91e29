"""Scientific and statistical files for load_file: Stata, SAS, SPSS and SAS catalogs; NumPy,
MATLAB, HDF5, NetCDF 3 and 4, IDL save files, FITS; pickles, joblib dumps and SQLite. Each
weighs what the file declares (rows, shapes, dataset sizes) against the free memory first."""

from __future__ import annotations

import sandbox_detect as detect
from sandbox_archives import Source, human
from sandbox_errors import LoadError, MissingLibraryError, guard, missing, note, require
from sandbox_media import load_image

# Statistical packages


_STAT_METADATA = {
    "stata": "read_dta",
    "sas": "read_sas7bdat",
    "xport": "read_xport",
    "spss": "read_sav",
    "spss_portable": "read_por",
}
PANDAS_STAT = {"stata": "read_stata", "sas": "read_sas", "xport": "read_sas", "spss": "read_spss"}


def load_statistical(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    path = source.path()
    pyreadstat = _stat_guard(source, path)
    if source.type == "spss_portable" or (source.type == "sas" and "catalog_file" in options):
        pyreadstat = pyreadstat or require("pyreadstat", "pyreadstat", source)
        if "catalog_file" in options:
            options.setdefault("apply_value_formats", True)  # the catalog's labels, applied
        frame, _meta = getattr(pyreadstat, _STAT_METADATA[source.type])(path, **options)
        return frame
    if source.type == "spss":
        require("pyreadstat", "pyreadstat", source)
    given = dict(options)
    if source.type == "sas":
        options.setdefault("format", "sas7bdat")
        options.setdefault("encoding", "infer")  # the header names it; else text stays bytes
    elif source.type == "xport":
        options.setdefault("format", "xport")
        options.setdefault("encoding", None)  # XPORT records none: decoded below, by content
    try:
        frame = getattr(pd, PANDAS_STAT[source.type])(path, **options)
    except Exception as exc:
        if pyreadstat is None:
            raise
        try:
            frame, _meta = getattr(pyreadstat, _STAT_METADATA[source.type])(path, **given)
        except Exception:
            raise exc from None
        if source.type != "xport" or "XPORT" not in str(exc):  # v8 XPORT: expected, no note
            note(
                f"{source.label}: pandas could not read it ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}); read with pyreadstat"
            )
        return frame
    return _decode_bytes(frame) if options.get("encoding") is None else frame


def _decode_bytes(frame):
    """Text columns that came back as bytes, decoded in the encoding their content shows."""
    import io

    for name in frame.columns:
        column = frame[name]
        if column.dtype != object or not column.map(lambda v: isinstance(v, bytes)).any():
            continue
        raw = b"\n".join(v for v in column if isinstance(v, bytes))
        encoding = detect.detect_encoding(io.BytesIO(raw)).encoding
        frame[name] = column.map(
            lambda v, encoding=encoding: (
                v.decode(encoding, "replace").rstrip() if isinstance(v, bytes) else v
            )
        )
    return frame


def _stat_guard(source: Source, path: str):
    try:
        import pyreadstat
    except ImportError:
        return None
    try:
        _, meta = getattr(pyreadstat, _STAT_METADATA[source.type])(path, metadataonly=True)
    except Exception:
        return pyreadstat
    rows, columns = meta.number_rows or 0, meta.number_columns or 0
    guard(
        source,
        16 * rows * columns,
        f"it declares {rows:,} rows of {columns} variables",
        "usecols=[...] (pyreadstat) or columns=[...] (Stata) reads fewer variables, and "
        "pyreadstat.read_file_in_chunks reads it in parts.",
    )
    return pyreadstat


def load_sas_catalog(source: Source, options: dict):
    pyreadstat = require("pyreadstat", "pyreadstat", source)
    _frame, meta = pyreadstat.read_sas7bcat(source.path(), **options)
    note(
        f"{source.label} is a SAS format catalog: returning its formats as {{format: {{value: "
        "label}}}; load_file('data.sas7bdat', catalog_file=get_file_path(...)) applies them"
    )
    return meta.value_labels


# Arrays


def load_numpy(source: Source, options: dict):
    np = require("numpy", "numpy", source)
    # The container is the boundary: object arrays (pickled) load like pickles do.
    options.setdefault("allow_pickle", True)
    path = source.path()
    if source.type == "npz":
        import zipfile

        declared = 0
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as fh:
                    declared += _npy_bytes(np, fh) or info.file_size
        guard(
            source,
            declared,
            f"its arrays declare {human(declared)}",
            "numpy.load(get_file_path(...))[name] reads one array.",
        )
        with _np_load(source, np, path, options) as loaded:
            return {name: loaded[name] for name in loaded.files}
    with open(path, "rb") as fh:
        declared = _npy_bytes(np, fh)
    free, _ = detect.memory_budget()
    if (
        declared
        and free is not None
        and declared > 0.85 * free
        and source.disk_path
        and "mmap_mode" not in options
    ):
        note(
            f"{source.label}: its array needs {human(declared)}, more than the run has free: "
            "returning it memory-mapped (read-only, read from the file on use)"
        )
        options["mmap_mode"] = "r"
        return np.load(path, **options)
    if declared:
        guard(source, declared, f"its array header declares {human(declared)}", "")
    return _np_load(source, np, path, options)


def _np_load(source: Source, np, path: str, options: dict):
    try:
        loaded = np.load(path, **options)
        if hasattr(loaded, "files"):  # an npz loads lazily: try its object arrays now
            for name in loaded.files:
                loaded[name]
        return loaded
    except UnicodeError:
        if "encoding" in options:
            raise
    note(f"{source.label} holds Python 2 pickled objects: read with encoding='latin1'")
    return np.load(path, encoding="latin1", **options)


def _npy_bytes(np, fh) -> int | None:
    try:
        version = np.lib.format.read_magic(fh)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _fortran, dtype = reader(fh)
    except Exception:
        return None
    count = 1
    for dim in shape:
        count *= dim
    return count * dtype.itemsize


def load_matlab(source: Source, options: dict):
    scipy_io = require("scipy.io", "scipy", source)
    path = source.path()
    if source.head().startswith(b"MATLAB 7.3") or detect.sniff(source.head()) == "hdf5":
        return _h5py_file(source, f"{source.label} is a MATLAB v7.3 (HDF5) file")
    try:
        variables = scipy_io.whosmat(path)
    except NotImplementedError:
        return _h5py_file(source, f"{source.label} is a MATLAB v7.3 (HDF5) file")
    except Exception:
        variables = []
    declared = 0
    for _name, shape, kind in variables:
        if kind != "sparse":
            count = 1
            for dim in shape:
                count *= dim
            declared += 8 * count
    guard(
        source,
        declared,
        f"its variables declare {human(declared)}",
        "variable_names=[...] reads some variables only.",
    )
    try:
        data = scipy_io.loadmat(path, **options)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        return _h5py_file(source, f"{source.label} is a MATLAB v7.3 (HDF5) file")
    return {key: value for key, value in data.items() if not key.startswith("__")}


def _h5py_file(source: Source, why: str):
    h5py = require("h5py", "h5py", source)
    note(f"{why}: returning an h5py.File (read datasets with f[name][...])")
    source.keep = True
    return h5py.File(source.path(), "r")


def _h5_datasets(h5py, handle) -> list:
    found = []
    handle.visititems(
        lambda name, item: found.append((name, item)) if isinstance(item, h5py.Dataset) else None
    )
    return found


def _h5_bytes(item) -> int:
    try:
        return item.size * item.dtype.itemsize
    except (TypeError, ValueError):  # a type numpy has no equivalent for (PyTables' time...)
        return 0


def load_hdf5(source: Source, options: dict):
    pd = require("pandas", "pandas", source)
    h5py = require("h5py", "h5py", source)
    path = source.path()
    if "key" in options:
        return pd.read_hdf(path, **options)
    with h5py.File(path, "r") as handle:
        declared = sum(_h5_bytes(item) for _, item in _h5_datasets(h5py, handle))
        pandas_file = "pandas_type" in handle.attrs or any(
            "pandas_type" in handle[key].attrs for key in handle
        )
    free, _ = detect.memory_budget()
    if free is not None and declared > 0.4 * free:
        return _h5py_file(
            source,
            f"{source.label} holds {human(declared)} of data, more than fits in memory at once",
        )
    if pandas_file:
        try:
            require("tables", "tables", source)
            with pd.HDFStore(path, mode="r") as store:
                listed = store.keys()
                # Categorical columns of table-format frames keep their categories under
                # <key>/meta/...: part of that frame, not frames of their own.
                keys = [k for k in listed if not any(k.startswith(o + "/meta/") for o in listed)]
                frames = {key: store[key] for key in keys}
            if keys:
                return frames[keys[0]] if len(keys) == 1 else frames
        except (ValueError, TypeError, KeyError, OSError, AttributeError):
            pass
    source.keep = True
    return h5py.File(path, "r")


def load_netcdf(source: Source, options: dict):
    kind = detect.sniff(source.head())
    if kind == "hdf5":
        return _netcdf4(source)
    if kind == "netcdf_cdf5":
        raise missing(
            "netCDF4",
            "netCDF4",
            source,
            "This is a CDF-5 (64-bit data) NetCDF file, which scipy cannot read.",
        )
    if kind == "nasa_cdf":
        raise missing("cdflib", "cdflib", source, "This is a NASA CDF file, not NetCDF.")
    scipy_io = require("scipy.io", "scipy", source)
    require("numpy", "numpy", source)
    path = source.path()
    with scipy_io.netcdf_file(path, "r", mmap=True, maskandscale=True) as handle:
        declared = sum(
            v.data.nbytes for v in handle.variables.values() if getattr(v, "data", None) is not None
        )
        guard(
            source,
            2 * declared,
            f"its variables declare {human(declared)}",
            "scipy.io.netcdf_file(get_file_path(...), mmap=True) reads variables lazily.",
        )
        result = {}
        for name, variable in handle.variables.items():
            # Copies: the file's memory map closes with it. maskandscale gives masked arrays
            # where _FillValue / missing_value are set, and applies scale_factor/add_offset.
            value = variable[...] if variable.shape else variable.getValue()
            result[name] = value.copy() if hasattr(value, "copy") else value
        value = variable = None  # no view of the map may outlive the file
    return result


def _netcdf4(source: Source):
    h5py = require("h5py", "h5py", source)
    np = require("numpy", "numpy", source)
    path = source.path()
    with h5py.File(path, "r") as handle:
        datasets = [
            (name, item) for name, item in _h5_datasets(h5py, handle) if not _dimension_only(item)
        ]
        declared = sum(_h5_bytes(item) for _, item in datasets)
        free, _ = detect.memory_budget()
        if free is not None and declared > 0.4 * free:
            return _h5py_file(source, f"{source.label} is NetCDF4 with {human(declared)} of data")
        result = {}
        for name, item in datasets:
            data = item[()]
            attrs = item.attrs
            if "_FillValue" in attrs and isinstance(data, np.ndarray):
                data = np.ma.masked_equal(
                    data,
                    attrs["_FillValue"][0] if np.ndim(attrs["_FillValue"]) else attrs["_FillValue"],
                )
            if "scale_factor" in attrs or "add_offset" in attrs:
                data = data * attrs.get("scale_factor", 1) + attrs.get("add_offset", 0)
            result[name] = data
    return result


def _dimension_only(item) -> bool:
    """NetCDF4 stores a dimension without a coordinate variable as a placeholder dataset."""
    name = item.attrs.get("NAME", b"")
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and name.startswith("This is a netCDF dimension but not")


def load_idl_save(source: Source, options: dict):
    scipy_io = require("scipy.io", "scipy", source)
    options.setdefault("python_dict", True)
    return dict(scipy_io.readsav(source.path(), **options))


def load_fits(source: Source, options: dict):
    try:
        from astropy.io import fits
    except ImportError:
        fits = None
    if fits is not None:
        source.keep = True
        return fits.open(source.path(), **options)
    try:
        image = load_image(source, options)
    except (LoadError, MissingLibraryError):
        raise missing("astropy", "astropy", source) from None
    note(
        f"{source.label}: astropy is not installed, so this FITS file was read as an image "
        "with Pillow (its first image only, no header)"
    )
    return image


# Python objects, databases


def load_pickle(source: Source, options: dict):
    import pickle

    try:
        with source.open() as fh:
            return pickle.load(fh, **options)
    except UnicodeDecodeError as exc:
        if "encoding" in options:
            raise
        first = exc  # a Python 2 pickle: its str are bytes, numpy's arrays need latin-1
        try:
            with source.open() as fh:
                loaded = pickle.load(fh, encoding="latin1", **options)
            note(f"{source.label} is a Python 2 pickle: read with encoding='latin1'")
            return loaded
        except Exception:
            pass
    except Exception as exc:
        first = exc
    try:
        import joblib
    except ImportError:
        raise first from None
    try:
        return joblib.load(source.path())
    except Exception:
        raise first from None


def load_joblib(source: Source, options: dict):
    joblib = require("joblib", "joblib", source)
    return joblib.load(source.path(), **options)


def load_sqlite(source: Source, options: dict):
    import sqlite3
    from urllib.parse import quote

    source.keep = True
    # The input folder is read-only: immutable=1 stops SQLite from trying to lock or journal.
    return sqlite3.connect(f"file:{quote(source.path())}?mode=ro&immutable=1", uri=True, **options)
