"""Runs INSIDE a sandbox container (stdlib only), sent as `python -I -c <this file> MODE`.

Modes: `inventory` prints the installed Python distributions and Debian packages (the SBOM's
input); `audit` prints, as the code's uid sees it at run time, everything `python -m app audit`
checks: identity, capabilities, setuid/setgid files, world-writable and writable paths, tools
that must not exist, sockets, environment names, mounts and the inventory. One JSON object on
stdout. Not part of the image: the host sends it, so any image can be audited.
"""

import ctypes
import json
import os
import stat
import sys

SKIP_TREES = ("/proc", "/sys")
FORBIDDEN_TOOLS = (
    "su",
    "sudo",
    "doas",
    "pkexec",
    "docker",
    "dockerd",
    "containerd",
    "ctr",
    "runc",
    "podman",
    "kubectl",
)


def python_packages():
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")  # type: ignore[attr-defined]
        if name:
            found[name.lower()] = {
                "name": name,
                "version": dist.version,
                "license": (dist.metadata.get("License") or "")[:200],  # type: ignore[attr-defined]
            }
    return sorted(found.values(), key=lambda p: p["name"].lower())


def debian_packages():
    packages: list[dict] = []
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return packages
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") and "installed" in fields.get("Status", "").split():
            packages.append({"name": fields["Package"], "version": fields.get("Version", "")})
    return sorted(packages, key=lambda p: p["name"])


def walk():
    """(path, lstat) of everything under /, except the kernel's virtual trees."""
    stack = ["/"]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.path in SKIP_TREES:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            yield entry.path, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)


def status_fields():
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def io_uring_setup(libc):
    """Whether the kernel lets the code create an io_uring (syscall 425 on x86-64 and arm64)."""
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 4, params)
    if fd >= 0:
        os.close(fd)
        return "ALLOWED"
    return f"refused (errno {ctypes.get_errno()})"


def audit():
    libc = ctypes.CDLL(None, use_errno=True)
    status = status_fields()
    setuid, world_writable, writable, tools, sockets = [], [], [], [], []
    for path, st in walk():
        mode = st.st_mode
        name = os.path.basename(path)
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            setuid.append(path)
        if (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and mode & stat.S_IWOTH:
            world_writable.append(path)
        if (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and os.access(path, os.W_OK):
            writable.append(path)
        if stat.S_ISSOCK(mode):
            sockets.append(path)
        if name in FORBIDDEN_TOOLS and stat.S_ISREG(mode) and mode & 0o111:
            tools.append(path)
    with open("/proc/mounts") as fh:
        mounts = [line.split()[:4] for line in fh]
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "capabilities": {k: status.get(k, "") for k in ("CapPrm", "CapEff", "CapBnd", "CapAmb")},
        "no_new_privs": libc.prctl(39, 0, 0, 0, 0),
        "seccomp": status.get("Seccomp", ""),
        "io_uring_setup": io_uring_setup(libc),
        "kernel_release": os.uname().release,
        "interfaces": sorted(n for _, n in __import__("socket").if_nameindex()),
        "setuid_files": setuid[:200],
        "world_writable": world_writable[:200],
        "writable": writable[:500],
        "forbidden_tools": tools,
        "sockets": sockets[:100],
        "environment": sorted(os.environ),
        "mounts": [{"source": m[0], "target": m[1], "type": m[2], "options": m[3]} for m in mounts],
        "python": sys.version.split()[0],
        "python_packages": python_packages(),
    }


def main(mode):
    if mode == "inventory":
        result = {
            "python": sys.version.split()[0],
            "python_packages": python_packages(),
            "debian_packages": debian_packages(),
        }
    else:
        result = audit()
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "audit")
