"""A CycloneDX SBOM of the sandbox image, from what is really installed in it.

`python -m app image build` writes one per built image hash (also when it reuses an image that
has none yet): DATA_DIR/sbom/<repo>-<hash>.cdx.json. The inventory is read inside a throwaway,
network-less container of the image by app/ops/image_probe.py.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError, EngineUnavailable
from app.sandbox.names import LABEL_PREFIX, PYTHON
from app.sandbox.policy import SandboxPolicy

PROBE_SOURCE = Path(__file__).with_name("image_probe.py")
INVENTORY_TIMEOUT = 300.0


class SbomError(RuntimeError):
    """The inventory could not be read from the image."""


def probe_command(mode: str) -> list[str]:
    return [PYTHON, "-I", "-c", PROBE_SOURCE.read_text(), mode]


def read_inventory(engine: DockerEngine, image: str, uid: int = SandboxPolicy.keeper_uid) -> dict:
    """Python distributions and Debian packages installed in `image`."""
    args = {
        "image": image,
        "command": probe_command("inventory"),
        "user": f"{uid}:{uid}",
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "labels": {f"{LABEL_PREFIX}.sbom": "true"},
        "detach": True,
    }
    try:
        status, output, errors = engine.run_and_capture(args, INVENTORY_TIMEOUT)
    except (EngineError, EngineUnavailable) as exc:
        raise SbomError(f"cannot read the package inventory of {image}: {exc}") from None
    try:
        return json.loads(output)
    except ValueError:
        raise SbomError(
            f"the inventory probe in {image} failed (status {status}): "
            f"{errors[-300:].decode(errors='replace')}"
        ) from None


def cyclonedx(image: str, image_id: str, inventory: dict) -> dict:
    """A CycloneDX 1.5 JSON document for the image."""
    components = [
        {
            "type": "library",
            "bom-ref": f"pkg:pypi/{p['name'].lower()}@{p['version']}",
            "name": p["name"],
            "version": p["version"],
            "purl": f"pkg:pypi/{p['name'].lower()}@{p['version']}",
            **({"licenses": [{"license": {"name": p["license"]}}]} if p.get("license") else {}),
        }
        for p in inventory.get("python_packages", [])
    ]
    components += [
        {
            "type": "library",
            "bom-ref": f"pkg:deb/debian/{p['name']}@{p['version']}",
            "name": p["name"],
            "version": p["version"],
            "purl": f"pkg:deb/debian/{p['name']}@{p['version']}",
        }
        for p in inventory.get("debian_packages", [])
    ]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tools": [{"name": "codeinterp image build"}],
            "component": {
                "type": "container",
                "bom-ref": image_id,
                "name": image,
                "version": image_id,
                "properties": [{"name": "python", "value": inventory.get("python", "")}],
            },
        },
        "components": components,
    }


def sbom_path(sbom_dir: Path, hashed_tag: str) -> Path:
    repo, _, tag = hashed_tag.rpartition(":")
    return sbom_dir / f"{repo.replace('/', '_')}-{tag}.cdx.json"


def write_sbom(engine: DockerEngine, hashed_tag: str, sbom_dir: Path) -> Path:
    """Write the SBOM of `hashed_tag` unless it exists; returns its path."""
    path = sbom_path(sbom_dir, hashed_tag)
    if path.is_file():
        return path
    image_id = engine.image_id(hashed_tag)
    document = cyclonedx(hashed_tag, image_id, read_inventory(engine, hashed_tag))
    sbom_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document, indent=1))
    partial.replace(path)
    return path
