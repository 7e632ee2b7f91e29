"""The sandbox: one hardened, short-lived container per code run.

It is given a SandboxPolicy and an engine and knows nothing of files, chat, Discord or settings;
app/wiring.py builds it. Nothing here imports discord.
"""

from app.sandbox.engine import Engine, EngineError, EngineUnavailable, ImageMissing
from app.sandbox.packages import PackageCache, PackageCatalog, PackageInstaller
from app.sandbox.policy import SandboxPolicy
from app.sandbox.pool import WarmPool
from app.sandbox.result import (
    InputFile,
    OutputFile,
    RunRequest,
    RunResult,
    RunStatus,
    SkippedOutput,
)
from app.sandbox.runner import SandboxRunner
from app.sandbox.service import SandboxService, SandboxStatus, SandboxUnavailable
from app.sandbox.slots import RunSlots

__all__ = [
    "Engine",
    "EngineError",
    "EngineUnavailable",
    "ImageMissing",
    "InputFile",
    "OutputFile",
    "PackageCache",
    "PackageCatalog",
    "PackageInstaller",
    "RunRequest",
    "RunResult",
    "RunSlots",
    "RunStatus",
    "SandboxPolicy",
    "SandboxRunner",
    "SandboxService",
    "SandboxStatus",
    "SandboxUnavailable",
    "SkippedOutput",
    "WarmPool",
]
