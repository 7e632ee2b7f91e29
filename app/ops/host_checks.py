"""What `audit` checks beyond one container: the host and the engine a sandbox runs on.

- The versions of the kernel, runc, containerd and runsc, against the known container escapes of
  app/ops/known_escapes.json (each entry with its CVE id and source). A match is a warning: a
  distribution's package may carry the fix under the old version number.
- The kernel's core_pattern: a pipe (`|/usr/share/apport/apport ...`, systemd-coredump) makes the
  kernel start that helper as root on the host for every crash inside a container, whatever the
  container's core limit; a long history of bugs in those helpers makes that a warning.
- User-namespace remapping of the engine (`userns-remap`): reported, since with it uid 20005 in a
  container is another uid on the host.
- An extra package index (SANDBOX_PIP_EXTRA_INDEX_URL): pip picks the highest version among all
  indexes, so anyone who can publish a package of the same name on PyPI wins (dependency
  confusion): a warning with the fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

KNOWN_ESCAPES = Path(__file__).with_name("known_escapes.json")
CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_RUNSC_DATE = re.compile(r"(20\d{2})(\d{2})(\d{2})")


@dataclass
class Finding:
    """A check's outcome: name, whether it passed, what was seen, the fix, and whether a failure
    is only a warning (it does not fail the audit)."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False


def version_tuple(text: str) -> tuple[int, ...] | None:
    """(major, minor, patch) from the first version-looking part of `text`: "v1.1.12-0-g51d5e94",
    "1.1.5+ds1-1+deb12u1", "6.1.0-18-amd64". None when there is none."""
    match = _VERSION.search(text or "")
    if match is None:
        return None
    return tuple(int(part or 0) for part in match.groups())


def _in_range(version: tuple[int, ...], entry: dict) -> bool:
    low = version_tuple(str(entry.get("from", "0.0.0"))) or (0, 0, 0)
    high = version_tuple(str(entry["below"])) or (0, 0, 0)
    return low <= version < high


def known_escapes(component: str, version: str, table: dict | None = None) -> list[dict]:
    """The entries of the known-escapes file that match `component` at `version`."""
    table = table if table is not None else json.loads(KNOWN_ESCAPES.read_text())
    parsed = version_tuple(version)
    if parsed is None:
        return []
    return [entry for entry in table.get(component, []) if _in_range(parsed, entry)]


def runsc_release(version: str) -> date | None:
    """The release date a runsc version carries ("release-20221219.0", "0.0~20221219.0")."""
    match = _RUNSC_DATE.search(version or "")
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def engine_versions(info: dict, version: dict, runtime: str) -> dict[str, str]:
    """kernel, docker, containerd, runc (and runsc when it is the runtime), as the engine says."""
    found = {"kernel": str(info.get("KernelVersion") or ""), "docker": str(version.get("Version"))}
    for component in version.get("Components") or []:
        name = str(component.get("Name", "")).lower()
        if name in ("containerd", "runc"):
            found[name] = str(component.get("Version") or "")
    found.setdefault("runc", str((info.get("RuncCommit") or {}).get("ID") or ""))
    found.setdefault("containerd", str((info.get("ContainerdCommit") or {}).get("ID") or ""))
    if runtime == "runsc":
        path = ((info.get("Runtimes") or {}).get("runsc") or {}).get("path") or ""
        found["runsc"] = _runsc_version(path)
    return found


def _runsc_version(path: str) -> str:
    """`runsc --version` when the binary is visible from here (the bot's host), else ""."""
    if not path or not os.path.isfile(path):
        return ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    first = out.stdout.strip().splitlines()[:1]
    return first[0].removeprefix("runsc version ").strip() if first else ""


def version_findings(versions: dict[str, str], today: date | None = None) -> list[Finding]:
    table = json.loads(KNOWN_ESCAPES.read_text())
    findings = []
    for component in ("kernel", "runc", "containerd"):
        shown = versions.get(component) or "unknown"
        matches = known_escapes(component, versions.get(component, ""), table)
        cves = sorted({m["cve"] for m in matches})
        findings.append(
            Finding(
                f"{component} has no known container escape",
                not matches,
                f"{shown}"
                + (
                    f": {'; '.join(m['cve'] + ' ' + m['what'] for m in matches)}" if matches else ""
                ),
                f"upgrade {component}, or check that your distribution's package has the fixes "
                f"for {', '.join(cves)} ({'; '.join(sorted({m['source'] for m in matches}))})",
                warning=True,
            )
        )
    if "runsc" in versions:
        findings.append(_runsc_finding(versions["runsc"], table["runsc"], today or date.today()))
    return findings


def _runsc_finding(version: str, rule: dict, today: date) -> Finding:
    released = runsc_release(version)
    name = "runsc is a recent release"
    if released is None:
        return Finding(
            name,
            False,
            f"version {version or 'unknown'} (the runsc binary is not visible from here)",
            "run the audit on the Docker host, or check `runsc --version` there",
            warning=True,
        )
    age = (today - released).days
    return Finding(
        name,
        age <= int(rule["max_age_days"]),
        f"{version}, released {released.isoformat()} ({age} days ago)",
        f"upgrade gVisor: {rule['what']} ({rule['source']})",
        warning=True,
    )


def core_pattern_finding(pattern: str | None = None) -> Finding:
    if pattern is None:
        try:
            pattern = CORE_PATTERN.read_text().strip()
        except OSError:
            pattern = ""
    piped = pattern.startswith("|")
    return Finding(
        "no core dump helper on the host",
        not piped,
        f"kernel.core_pattern={pattern or '(unreadable)'}",
        "every crash in a sandbox starts this helper as root on the host (the containers' core "
        "limit of 0 does not stop the kernel from piping): set a file pattern, e.g. "
        "`sysctl -w kernel.core_pattern=core` (and in /etc/sysctl.d/ to keep it), or disable "
        "apport / systemd-coredump",
        warning=True,
    )


def userns_finding(info: dict) -> Finding:
    remapped = any("name=userns" in str(o) for o in info.get("SecurityOptions") or [])
    return Finding(
        "user namespaces",
        True,
        "remapped (userns-remap): container uids are other uids on the host"
        if remapped
        else "not remapped: each run's code gets a uid of its own instead",
    )


def extra_index_finding(extra_index_url: str) -> Finding:
    return Finding(
        "no extra package index",
        not extra_index_url,
        "SANDBOX_PIP_EXTRA_INDEX_URL " + ("is set" if extra_index_url else "is empty"),
        "pip takes the highest version across PyPI and the extra index, so a public package of "
        "the same name as a private one wins (dependency confusion): use SANDBOX_PIP_INDEX_URL "
        "with one index that mirrors PyPI and your packages, and leave the extra index empty",
        warning=True,
    )
