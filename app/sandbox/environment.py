"""What a run's code finds, as facts for the model's tool description (app/chat/tools.py).

Built by the side that runs the sandbox from what it really uses: the image's own list of its
distributions (written at image build, /opt/sandbox/image-modules.json, read without starting
anything), the approved auto-install catalog when PACKAGE_AUTO_INSTALL is on, session state, the
output folder and the limits of its policy. The chat never keeps a package list of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import structlog

from app.sandbox.engine import Engine, EngineError, EngineUnavailable
from app.sandbox.names import IMAGE_MODULES_FILE
from app.sandbox.packages import PackageInstaller
from app.sandbox.policy import SandboxPolicy

MAX_LIST_BYTES = 4 * 1024**2
MAX_NAMES = 500
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SandboxEnvironment:
    preinstalled: tuple[str, ...] = ()
    """`name==version` of the image's top-level packages; empty when the image could not be read."""
    approved: tuple[str, ...] = ()
    """Distributions that install when imported (empty: auto-install is off)."""
    keeps_state: bool = False
    state_max_bytes: int = 0
    max_timeout: float = 0.0
    memory_bytes: int = 0
    output_dir: str = "/mnt/output"
    max_output_files: int = 0
    max_output_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> SandboxEnvironment:
        """From the sandbox service's answer; what has the wrong type is left at its default."""
        if not isinstance(data, dict):
            return cls()
        values: dict = {}
        for name, default in asdict(cls()).items():
            value = data.get(name, default)
            if isinstance(default, tuple):
                items = value if isinstance(value, list | tuple) else []
                values[name] = tuple(str(item)[:200] for item in items[:MAX_NAMES])
            elif isinstance(default, bool):
                values[name] = value if isinstance(value, bool) else default
            elif isinstance(default, int | float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                values[name] = type(default)(value) if ok else default
            else:
                values[name] = str(value)[:200] if isinstance(value, str) else default
        return cls(**values)


class EnvironmentReader:
    """Reads the image's distribution list once per image id."""

    def __init__(
        self, policy: SandboxPolicy, engine: Engine, packages: PackageInstaller | None
    ) -> None:
        self.policy = policy
        self.engine = engine
        self.packages = packages
        self._seen: tuple[str, tuple[str, ...]] | None = None

    def describe(self, max_timeout: float) -> SandboxEnvironment:
        """Blocking (engine calls)."""
        policy = self.policy
        approved = sorted(self.packages.catalog.approved) if self.packages is not None else []
        return SandboxEnvironment(
            preinstalled=self._preinstalled(),
            approved=tuple(approved),
            keeps_state=policy.keeps_state,
            state_max_bytes=policy.state_max_bytes,
            max_timeout=max_timeout,
            memory_bytes=policy.memory_bytes,
            output_dir=policy.output_mount,
            max_output_files=policy.max_output_files,
            max_output_bytes=policy.output_size_bytes,
        )

    def _preinstalled(self) -> tuple[str, ...]:
        try:
            image_id = self.engine.image_id(self.policy.image)
            if self._seen is not None and self._seen[0] == image_id:
                return self._seen[1]
            args = self.policy.probe_container_args(image_id)
            raw = self.engine.read_image_file(args, IMAGE_MODULES_FILE, MAX_LIST_BYTES)
            names = json.loads(raw or b"{}").get("distributions", [])
        except (EngineUnavailable, EngineError, ValueError, AttributeError) as exc:
            log.warning("the image's distribution list is unreadable", error=str(exc)[:200])
            return ()
        if not isinstance(names, list):
            return ()
        found = tuple(str(name) for name in names[:MAX_NAMES] if isinstance(name, str))
        self._seen = (image_id, found)
        return found
