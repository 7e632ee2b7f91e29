"""The package install step: runs pip for ONE approved distribution inside an install container.

The host starts this in a container of the sandbox image that runs no user code and mounts no user
files: only a fresh work folder (`--work`) of the host's package cache. It has network, unlike a
run. pip (kept in /opt/installer, readable only by the installer group) installs wheels only, so no
code of the downloaded packages runs here while the network is up; the versions of everything the
image already has are pinned as constraints, so an install never changes what the image provides.

Result, written last to <work>/result.json (the host reads nothing else but the installed tree):
  {"ok": true, "version": "1.0.0", "packages": ["toolz==1.0.0", ...]}
  {"ok": false, "reason": "<short pip reason>", "cause": "certificate" | "network" | ""}
`cause` says what pip's own error hides: behind a TLS-intercepting proxy pip retries, then
reports only "No matching distribution found"; the certificate failure is in its warnings.

`--check-index --work DIR DISTRIBUTION` only asks the package index for the distribution's
versions (`doctor`), with the same network, proxy, index and CA settings as an install.
The installed tree ends up in <work>/site (a plain site-packages folder); the host moves it into
the cache atomically.

`--list-modules` prints the top-level modules importable in the image (run once at image build),
so the host can tell which imports the image lacks without starting a container.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

PIP_HOME = "/opt/installer"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP_CA_BUNDLE = f"{PIP_HOME}/pip/_vendor/certifi/cacert.pem"
MAX_REASON = 600


def list_modules() -> dict:
    names = set(sys.builtin_module_names) | set(sys.stdlib_module_names)
    for entry in sys.path:
        if not os.path.isdir(entry):
            continue
        for name in os.listdir(entry):
            full = os.path.join(entry, name)
            if name.endswith(".py"):
                base = name[:-3]
            elif name.endswith((".so", ".pyd")):
                base = name.split(".", 1)[0]
            elif os.path.isdir(full):
                base = name  # a package, or a namespace package (no __init__.py)
            else:
                continue
            if base.isidentifier():
                names.add(base)
    return {
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "modules": sorted(names),
        # What the model is told is preinstalled (app/sandbox/environment.py): the image's
        # top-level packages (requirements.in), each with its version.
        "distributions": top_level_distributions(),
    }


def top_level_distributions(listing: str = "/opt/sandbox/image-requirements.in") -> list[str]:
    installed = dict(line.split("==", 1) for line in image_constraints().split())
    try:
        with open(listing) as fh:
            wanted = [normalize(line.split("#", 1)[0].strip()) for line in fh]
    except OSError:
        wanted = list(installed)
    return [f"{name}=={installed[name]}" for name in sorted(set(wanted)) if name in installed]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_constraints() -> str:
    """`name==version` of every distribution in the image: an install may add, never replace."""
    paths = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    lines = set()
    for dist in importlib.metadata.distributions(path=paths):
        name = dist.metadata["Name"]
        if name and dist.version:
            lines.add(f"{normalize(name)}=={dist.version}")
    return "".join(f"{line}\n" for line in sorted(lines))


def ca_bundle(work: str) -> str | None:
    """The admin's extra CA (work/ca.pem, placed by the host) added to the public ones."""
    extra = os.path.join(work, "ca.pem")
    if not os.path.isfile(extra):
        return None
    bundle = os.path.join(work, "bundle.pem")
    with open(bundle, "wb") as out:
        for source in (SYSTEM_CA_BUNDLE, PIP_CA_BUNDLE, extra):
            if os.path.isfile(source):
                with open(source, "rb") as fh:
                    out.write(fh.read().rstrip(b"\n") + b"\n")
    return bundle


def pip_reason(output: str) -> str:
    """The lines pip marks as errors (what went wrong), else the last lines, kept short."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors or lines[-3:] or ["pip failed without a message"]
    text = " ".join(line.removeprefix("ERROR: ") for line in chosen)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


CERTIFICATE_SIGNS = (
    "CERTIFICATE_VERIFY_FAILED",
    "certificate verify failed",
    "SSLCertVerificationError",
    "self-signed certificate",
    "self signed certificate",
    "unable to get local issuer certificate",
)
NETWORK_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No route to host",
    "Network is unreachable",
    "Connection refused",
    "ProxyError",
    "ConnectTimeoutError",
    "Read timed out",
)


def failure_cause(output: str) -> str:
    """What kept pip from the index, when its warnings say: "certificate", "network" or ""."""
    if any(sign in output for sign in CERTIFICATE_SIGNS):
        return "certificate"
    if any(sign in output for sign in NETWORK_SIGNS):
        return "network"
    return ""


def failure(output: str) -> dict:
    cause = failure_cause(output)
    signs = CERTIFICATE_SIGNS if cause == "certificate" else NETWORK_SIGNS if cause else ()
    evidence = [line.strip() for line in output.splitlines() if any(s in line for s in signs)]
    reason = evidence[0] if evidence else pip_reason(output)
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    return {"ok": False, "reason": reason, "cause": cause}


def pip_environment(tmp: str) -> dict:
    return {**os.environ, "PYTHONPATH": PIP_HOME, "TMPDIR": tmp, "PYTHONNOUSERSITE": "1"}


def check_index(work: str, dist: str) -> dict:
    """Whether the index answers for `dist`: {"ok": true, "version": newest} or a failure."""
    tmp = os.path.join(work, "tmp")
    os.makedirs(tmp, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "index",
        "versions",
        dist,
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "1",
        "--timeout",
        "20",
    ]
    bundle = ca_bundle(work)
    if bundle:
        cmd += ["--cert", bundle]
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=pip_environment(tmp)
    )
    output = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        return failure(output)
    return {"ok": True, "version": newest_version(output, dist)}


def newest_version(output: str, dist: str) -> str:
    """The version in pip index's `name (1.0.0)` line (it may follow a WARNING line)."""
    for line in output.splitlines():
        name, _, rest = line.strip().partition(" (")
        if rest.endswith(")") and normalize(name) == normalize(dist):
            return rest[:-1]
    return ""


def installed_trees(prefix: str) -> list[str]:
    """The site-packages folders pip made under the prefix (purelib and platlib may differ)."""
    trees = []
    for lib in ("lib", "lib64"):
        base = os.path.join(prefix, lib)
        if not os.path.isdir(base):
            continue
        for version in sorted(os.listdir(base)):
            for kind in ("site-packages", "dist-packages"):
                tree = os.path.join(base, version, kind)
                if os.path.isdir(tree) and not os.path.islink(tree):
                    trees.append(tree)
    return trees


def install(work: str, dist: str) -> dict:
    tmp = os.path.join(work, "tmp")
    prefix = os.path.join(work, "prefix")
    site = os.path.join(work, "site")
    os.makedirs(tmp, exist_ok=True)
    constraints = os.path.join(work, "constraints.txt")
    with open(constraints, "w") as fh:
        fh.write(image_constraints())
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--prefix",
        prefix,
        "--no-cache-dir",
        "--only-binary",
        ":all:",
        "--constraint",
        constraints,
        "--no-warn-script-location",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--retries",
        "2",
        "--timeout",
        "30",
    ]
    bundle = ca_bundle(work)
    if bundle:
        cmd += ["--cert", bundle]
    proc = subprocess.run(
        cmd + ["--", dist],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=pip_environment(tmp),
    )
    output = proc.stdout.decode("utf-8", errors="replace")
    with open(os.path.join(work, "pip.log"), "w") as fh:
        fh.write(output[-20000:])
    if proc.returncode != 0:
        return failure(output)
    os.makedirs(site)  # stays empty when everything needed was already in the image
    for tree in installed_trees(prefix):
        for name in os.listdir(tree):
            os.rename(os.path.join(tree, name), os.path.join(site, name))
    shutil.rmtree(prefix, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    packages, version = [], ""
    for found in importlib.metadata.distributions(path=[site]):
        name = found.metadata["Name"] or "?"
        packages.append(f"{name}=={found.version}")
        if normalize(name) == normalize(dist):
            version = found.version
    if not version:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return {"ok": False, "reason": f"pip installed nothing that provides {dist}"}
    return {"ok": True, "version": version, "packages": sorted(packages)}


def main(argv: list[str]) -> int:
    os.umask(0o022)  # the tree is read by the code's uid, never written by it
    if argv == ["--list-modules"]:
        json.dump(list_modules(), sys.stdout)
        return 0
    check = argv[:1] == ["--check-index"]
    if check:
        argv = argv[1:]
    if len(argv) != 3 or argv[0] != "--work":
        print(
            "usage: sandbox_install.py --list-modules | [--check-index] --work DIR DISTRIBUTION",
            file=sys.stderr,
        )
        return 2
    work, dist = argv[1], argv[2]
    result = check_index(work, dist) if check else install(work, dist)
    partial = os.path.join(work, "result.json.part")
    with open(partial, "w") as fh:
        json.dump(result, fh)
    os.rename(partial, os.path.join(work, "result.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
