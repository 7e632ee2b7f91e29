"""How load_file reports: its errors, its notes on stderr, and the memory guard.

Every error names the file, the type it was taken for, and the fix: an option, get_file_path()
to read the file by hand, or the approved package that importing would install.
"""

from __future__ import annotations

import importlib
import re
import sys

import sandbox_detect
from sandbox_archives import human

# Import name -> distribution of the packages that are installed when the code imports them.
# None: the host did not say (then messages say "if it is approved").
approved: dict[str, str] | None = None


class LoadError(ValueError):
    """load_file could not read a file; the message says which, as what, and what to do."""


class TooLargeToLoadError(LoadError):
    """The file declares more than the run's free memory: refused before it was read."""


class MissingLibraryError(ModuleNotFoundError):
    """A reader needs a Python package that is not installed in this sandbox."""


# Tracebacks name these by module: the user knows them as load_file's.
for _error in (LoadError, TooLargeToLoadError, MissingLibraryError):
    _error.__module__ = "sandbox_files"


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def taken_as(source) -> str:
    """'Apache Parquet (parquet)', 'CSV (csv, gzip-compressed, recognised by its content)'."""
    details = [source.type]
    if source.how and not source.how.startswith("member"):
        details.append(source.how)
    if source.by_content:
        details.append("recognised by its content")
    return f"{sandbox_detect.describe(source.type)} ({', '.join(details)})"


def by_hand(source) -> str:
    what = "the file's path" if source.within is None else "the path of the file it is in"
    return f"get_file_path({source.entry.id!r}) gives {what}, to read it by hand."


def failed(source, exc: BaseException, fix: str = "") -> LoadError:
    reason = " ".join(str(exc).split()) or "no details"
    if len(reason) > 400:
        reason = reason[:400] + "..."
    fix = f" {fix}" if fix else ""
    return LoadError(
        f"load_file({source.label}): could not read it as {taken_as(source)}: "
        f"{type(exc).__name__}: {reason}.{fix} {by_hand(source)}"
    )


def too_large(source, what: str, fix: str = "") -> TooLargeToLoadError:
    free, limit = sandbox_detect.memory_budget()
    room = f" ({human(free)} of this run's {human(limit)} are free)" if free and limit else ""
    fix = f" {fix}" if fix else ""
    return TooLargeToLoadError(
        f"load_file({source.label}): not loaded as {taken_as(source)}: {what}, more than this "
        f"run's memory can hold{room}.{fix} {by_hand(source)}"
    )


def guard(source, needed: float, what: str, fix: str = "") -> None:
    """Refuse before reading when the data declares more than the run has free: a file must
    never take the whole run (every other result with it) down with an out-of-memory kill."""
    free, _ = sandbox_detect.memory_budget()
    if free is not None and needed > 0.85 * free:
        raise too_large(source, f"{what} (about {human(needed)} in memory)", fix)


def require(module: str, distribution: str, source):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing(module, distribution, source) from None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing(module: str, distribution: str, source, alternative: str = "") -> MissingLibraryError:
    top = module.split(".")[0]
    names = {_normal(d) for d in (approved or {}).values()}
    if approved is None:
        fix = (
            f"If {distribution} is on this bot's approved package list, adding `import {top}` "
            "to the code installs it when the code runs again; if not, "
            f"{by_hand(source)}"
        )
    elif top in approved or _normal(distribution) in names:
        fix = (
            f"{distribution} is an approved package: add `import {top}` to the code and run "
            "it again; it is installed before the code starts, and load_file then reads the "
            "file."
        )
    else:
        fix = (
            f"{distribution} is not on this bot's approved package list, so it cannot be "
            f"installed here: {by_hand(source)}"
        )
    if alternative:
        fix = f"{alternative} {fix}"
    return MissingLibraryError(
        f"load_file({source.label}): reading {source.type} files needs the Python package "
        f"{distribution}, which is not installed in this sandbox (the file was taken for "
        f"{taken_as(source)}). {fix}"
    )
