"""A CycloneDX SBOM of the sandbox image, from what is really installed in it.

`python -m app image build` writes one per built image hash (also when it reuses an image that
has none yet): DATA_DIR/sbom/<repo>-<hash>.cdx.json. The inventory is read inside a throwaway,
network-less container of the image by app/sandbox/image_probe.py.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import docker
from docker.errors import DockerException

from app.sandbox.policy import LABEL_PREFIX, PYTHON

PROBE_SOURCE = Path(__file__).with_name("image_probe.py")
SBOM_FOLDER = "sbom"


class SbomError(RuntimeError):
    """The inventory could not be read from the image."""


def probe_command(mode: str) -> list[str]:
    return [PYTHON, "-I", "-c", PROBE_SOURCE.read_text(), mode]


def read_inventory(client: docker.DockerClient, image: str) -> dict:
    """Python distributions and Debian packages installed in `image`."""
    container = None
    try:
        container = client.containers.create(
            image,
            probe_command("inventory"),
            user="10001:10001",
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            labels={f"{LABEL_PREFIX}.sbom": "true"},
        )
        container.start()
        status = container.wait(timeout=300)
        output = container.logs(stdout=True, stderr=False)
        errors = container.logs(stdout=False, stderr=True)
    except DockerException as exc:
        raise SbomError(f"cannot read the package inventory of {image}: {exc}") from None
    finally:
        if container is not None:
            container.remove(force=True)
    try:
        return json.loads(output)
    except ValueError:
        raise SbomError(
            f"the inventory probe in {image} failed (status {status.get('StatusCode')}): "
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


def write_sbom(client: docker.DockerClient, hashed_tag: str, sbom_dir: Path) -> Path:
    """Write the SBOM of `hashed_tag` unless it exists; returns its path."""
    path = sbom_path(sbom_dir, hashed_tag)
    if path.is_file():
        return path
    image_id = client.images.get(hashed_tag).id
    document = cyclonedx(hashed_tag, image_id, read_inventory(client, hashed_tag))
    sbom_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document, indent=1))
    partial.replace(path)
    return path
