"""Building the images: content-hash tags, reuse, and a Debian base for registry-less hosts.

The sandbox image is tagged `<repo>:<hash>` where the hash covers every file of sandbox-image/
except the admin's local CA certificates, so the same sources give the same tag everywhere and an
existing build is reused. When the base image can be neither found nor pulled, a base is made
from Debian packages with debootstrap, from the mirror the machine's apt configuration names.
The app image (the root Dockerfile: the bot and `sandboxd`) is built the same way by
`app_builder`, from the same base, trusting the same CA files.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.ops.sbom import SbomError, write_sbom
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError
from app.sandbox.names import LABEL_PREFIX

SOURCE_DIR = Path(__file__).resolve().parents[2] / "sandbox-image"
APP_DIR = SOURCE_DIR.parent
APP_IMAGE = "codeinterp-bot:latest"
APP_TOP_FILES = ("Dockerfile", "pyproject.toml", "README.md")
EXTRA_CA_DIR = "extra-ca"
HASH_LABEL = f"{LABEL_PREFIX}.source-hash"
BASE_LABEL = f"{LABEL_PREFIX}.base-image"
DEBIAN_BASE_REPO = "codeinterp-base"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
APT_SOURCE_FILES = ("/etc/apt/sources.list",)
APT_SOURCE_DIR = "/etc/apt/sources.list.d"

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """The build could not finish; the message says why and what to do."""


def _hashed_files(source_dir: Path) -> list[Path]:
    files = []
    for path in sorted(source_dir.rglob("*")):
        rel = path.relative_to(source_dir)
        if not path.is_file() or rel.parts[0] == EXTRA_CA_DIR:
            continue
        if "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        files.append(path)
    return files


def app_files(root: Path) -> list[Path]:
    """The app image's sources: the Dockerfile, the project files, app/ and sandbox-image/."""
    package = [
        p
        for p in sorted((root / "app").rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    return [root / name for name in APP_TOP_FILES] + package + _hashed_files(root / SOURCE_DIR.name)


def source_hash(
    source_dir: Path = SOURCE_DIR, files: Callable[[Path], list[Path]] = _hashed_files
) -> str:
    """12 hex digits over the names and contents of the image sources."""
    digest = hashlib.sha256()
    for path in files(source_dir):
        digest.update(path.relative_to(source_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def split_reference(image: str) -> tuple[str, str]:
    """('repo', 'tag') of an image reference; tag defaults to latest."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


def ca_files(source_dir: Path, extra: Iterable[Path]) -> list[Path]:
    """CA certificates to trust for pip: the git-ignored folder plus those named on the command
    line."""
    found = [
        p
        for p in sorted((source_dir / EXTRA_CA_DIR).glob("*"))
        if p.suffix in (".pem", ".crt") and p.is_file()
    ]
    for path in extra:
        if not path.is_file():
            raise ImageBuildError(f"extra CA certificate {path} does not exist")
        found.append(path)
    return found


def build_context(
    source_dir: Path,
    cas: list[Path],
    files: Callable[[Path], list[Path]] = _hashed_files,
    ca_folder: str = EXTRA_CA_DIR,
) -> io.BytesIO:
    """A tar of the sources (sandbox-image/ by default) with the chosen CA files placed in
    `ca_folder`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in files(source_dir):
            tar.add(path, arcname=path.relative_to(source_dir).as_posix())
        folder = tarfile.TarInfo(ca_folder)
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        for index, path in enumerate(cas):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{ca_folder}/ca-{index:02d}.pem")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def apt_mirror(
    source_files: Iterable[str] = APT_SOURCE_FILES, source_dir: str = APT_SOURCE_DIR
) -> str | None:
    """The first Debian archive URI in the machine's apt sources (one-line or deb822 format)."""
    paths = [Path(p) for p in source_files]
    folder = Path(source_dir)
    if folder.is_dir():
        paths += sorted(folder.glob("*.list")) + sorted(folder.glob("*.sources"))
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri, suites in _apt_entries(text, deb822=path.suffix == ".sources"):
            main_suite = any(s == DEBIAN_SUITE or s.startswith(DEBIAN_SUITE + "-") for s in suites)
            security = "security" in uri or all("security" in s for s in suites)
            if main_suite and not security and uri.startswith(("http://", "https://", "file:/")):
                return uri
    return None


def _apt_entries(text: str, deb822: bool) -> list[tuple[str, list[str]]]:
    entries = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                entries += [(uri, fields.get("suites", [])) for uri in fields.get("uris", [])]
    else:
        for line in text.splitlines():
            parts = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 3 and parts[0] == "deb":
                entries.append((parts[1], [parts[2]]))
    return entries


@dataclass
class ImageBuilder:
    engine: DockerEngine
    image: str
    log: Log
    source_dir: Path = SOURCE_DIR
    sbom_dir: Path | None = None
    """Where the CycloneDX SBOM of each built image goes (None: no SBOM)."""
    files: Callable[[Path], list[Path]] = _hashed_files
    """The build context's files under source_dir (those the content hash covers)."""
    ca_folder: str = EXTRA_CA_DIR
    """Where the build finds the CA files pip trusts, in the context."""

    def tag_for_hash(self) -> str:
        repo, _ = split_reference(self.image)
        return f"{repo}:{source_hash(self.source_dir, self.files)}"

    def find(self, reference: str) -> dict | None:
        return self.engine.image_inspect(reference)

    def build(
        self,
        *,
        base_image: str,
        extra_ca: Iterable[Path] = (),
        force: bool = False,
        allow_debian_base: bool = True,
        mirror: str | None = None,
        pip_index_url: str = "",
        pip_extra_index_url: str = "",
    ) -> str:
        """Build (or reuse) the image; returns the content-hash tag. Also tags `self.image`."""
        hashed = self.tag_for_hash()
        existing = None if force else self.find(hashed)
        if existing is not None:
            self.log(f"reusing {hashed} (sources unchanged)")
        else:
            base = self.resolve_base(base_image, allow_debian_base, mirror)
            self._docker_build(
                hashed,
                base,
                ca_files(self.source_dir, extra_ca),
                pip_index_url,
                pip_extra_index_url,
            )
            existing = self.find(hashed)
        repo, tag = split_reference(self.image)
        if f"{repo}:{tag}" != hashed:
            self.engine.tag_image(hashed, repo, tag)
            self.log(f"tagged {hashed} as {repo}:{tag}")
        if self.sbom_dir is not None:
            try:
                self.log(f"SBOM (CycloneDX): {write_sbom(self.engine, hashed, self.sbom_dir)}")
            except (SbomError, EngineError, OSError, ValueError) as exc:
                self.log(f"warning: no SBOM written: {exc}")
        return hashed

    def resolve_base(self, base_image: str, allow_debian_base: bool, mirror: str | None) -> str:
        if self.find(base_image) is not None:
            return base_image
        self.log(f"pulling base image {base_image}")
        try:
            repo, tag = split_reference(base_image)
            self.engine.pull_image(repo, tag)
            return base_image
        except EngineError as exc:
            reason = str(exc).splitlines()[0][:200]
            if not allow_debian_base:
                raise ImageBuildError(
                    f"cannot pull base image {base_image} ({reason}); build one from Debian "
                    "packages with --debian-base, or pass --base with a local image"
                ) from None
            self.log(f"cannot pull {base_image} ({reason}); building a base from Debian packages")
        return self.debian_base(mirror)

    def debian_base(self, mirror: str | None) -> str:
        recipe = hashlib.sha256(
            f"{DEBIAN_SUITE}:{','.join(DEBIAN_PACKAGES)}:minbase".encode()
        ).hexdigest()[:12]
        reference = f"{DEBIAN_BASE_REPO}:{DEBIAN_SUITE}-{recipe}"
        if self.find(reference) is not None:
            self.log(f"reusing Debian base {reference}")
            return reference
        if shutil.which("debootstrap") is None:
            raise ImageBuildError(
                "building a Debian base needs debootstrap: apt-get install -y debootstrap "
                "(or pass --base with an image that has python3 and python3-venv)"
            )
        if os.geteuid() != 0:
            raise ImageBuildError("building a Debian base with debootstrap needs root")
        mirror = mirror or apt_mirror()
        if not mirror:
            raise ImageBuildError(
                "no Debian mirror found in the apt sources of this machine; pass --mirror URL"
            )
        self.log(f"debootstrap {DEBIAN_SUITE} from {mirror} (about a minute)")
        with tempfile.TemporaryDirectory(prefix="codeinterp-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            cmd = [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                DEBIAN_SUITE,
                str(rootfs),
                mirror,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
                raise ImageBuildError(f"debootstrap failed:\n{tail}")
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(rootfs / leftover, ignore_errors=True)
            archive = Path(tmp) / "rootfs.tar"
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
            repo, tag = split_reference(reference)
            self.engine.import_image(str(archive), repo, tag, ['CMD ["/bin/bash"]'])
        self.log(f"created Debian base {reference}")
        return reference

    def _docker_build(
        self, tag: str, base: str, cas: list[Path], index_url: str, extra_index_url: str
    ) -> None:
        self.log(f"building {tag} from {base} ({len(cas)} extra CA file(s)); this takes minutes")
        context = build_context(self.source_dir, cas, self.files, self.ca_folder)
        buildargs = {"BASE_IMAGE": base}
        if index_url:
            buildargs["PIP_INDEX_URL"] = index_url
        if extra_index_url:
            buildargs["PIP_EXTRA_INDEX_URL"] = extra_index_url
        for name in (
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "no_proxy",
        ):
            if os.environ.get(name):
                buildargs[name] = os.environ[name]
        tail: list[str] = []
        try:
            for chunk in self.engine.build_image(
                context,
                tag=tag,
                buildargs=buildargs,
                labels={HASH_LABEL: tag.rsplit(":", 1)[1], BASE_LABEL: base},
                rm=True,
                forcerm=True,
                pull=False,
            ):
                if "stream" in chunk:
                    for line in chunk["stream"].splitlines():
                        if line.strip():
                            tail = (tail + [line])[-15:]
                            self.log(line)
                if "error" in chunk:
                    raise ImageBuildError(_explain_build_failure(chunk["error"], tail))
        except EngineError as exc:
            raise ImageBuildError(_explain_build_failure(str(exc), tail)) from None


def app_builder(engine: DockerEngine, image: str, log: Log) -> ImageBuilder:
    """The builder of the app image (root Dockerfile), with the sandbox image's CA folder."""
    return ImageBuilder(
        engine,
        image,
        log,
        source_dir=APP_DIR,
        files=app_files,
        ca_folder=f"{SOURCE_DIR.name}/{EXTRA_CA_DIR}",
    )


def _explain_build_failure(error: str, tail: list[str]) -> str:
    text = "\n".join(tail + [error])
    hint = ""
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        hint = (
            "\nhint: pip does not trust this network's TLS proxy. Put its CA certificate (PEM) "
            "in sandbox-image/extra-ca/ or pass --extra-ca PATH"
        )
    elif "No matching distribution" in text or "Could not find a version" in text:
        hint = (
            "\nhint: the package index is unreachable or lacks a pinned version; "
            "see SANDBOX_PIP_INDEX_URL"
        )
    return f"image build failed: {error.strip()}\n--- last build output ---\n{text}{hint}"
