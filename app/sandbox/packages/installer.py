"""PackageInstaller: makes approved packages a run needs available, before the run and outside
its timer, without giving the run network.

1. Detection: the code's imports (parsed) minus what the image has (its module list, read once
   per image from /opt/sandbox/image-modules.json without starting anything) minus the stdlib.
2. What is missing and approved is installed by a separate install container (see
   SandboxPolicy.install_container_args) into the package cache, one distribution at a time,
   under a lock; what is not approved is never installed and never touches the network.
3. The run mounts the cache entries it needs read-only and imports from them.
4. Fallback: a run that still dies on ModuleNotFoundError for an approved package gets it
   installed and is run once more (exactly one retry).

Installs are bounded, since an import costs nothing to write and an install is a container with
network outside the run's timer and slots: at most `max_per_run` new distributions per run (the
fallback's included) and `max_per_user_day` per user in any 24 hours (InstallBudget). What is over
a limit is not installed; the run's message says so. Install containers share a network of their
own (SandboxPolicy.install_network_args), created on first use, on which they cannot reach each
other.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from app.sandbox.engine import Engine, EngineError, EngineUnavailable
from app.sandbox.names import IMAGE_MODULES_FILE
from app.sandbox.packages.cache import CleanupReport, PackageCache
from app.sandbox.packages.catalog import PackageCatalog
from app.sandbox.packages.detect import imports_in, missing_module
from app.sandbox.policy import HostPathError, SandboxPolicy

log = structlog.get_logger(__name__)

# Names the runtime provides to every run: never packages to install.
RUNTIME_MODULES = {"sandbox_files", "sandbox_runner", "sandbox_collect", "sandbox_install"}
MAX_RESULT_BYTES = 64 * 1024
MAX_MODULE_LIST_BYTES = 4 * 1024**2
# The image id behind SANDBOX_IMAGE is looked up at most this often: an inspect on every run would
# sit on the reply's path. A rebuild is noticed within this time; until then an import the new
# image lacks is still caught by the after-run fallback.
IMAGE_ID_TTL = 60.0
DAY = 24 * 3600.0


def image_key(image_id: str) -> str:
    """The cache folder name of an image: the start of its content id (sha256)."""
    return image_id.split(":")[-1][:16]


@dataclass
class PackagePlan:
    """What one run gets from the package cache, and what happened on the way."""

    image_key: str | None = None
    image_modules: set[str] | None = None
    mounts: dict[str, Path] = field(default_factory=dict)
    """distribution -> cache entry, mounted read-only into the run"""
    installed: list[str] = field(default_factory=list)
    """`name==version` of the distributions installed for this run"""
    install_seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    """distribution -> short reason its install failed, or why it was not attempted (a limit)"""
    installed_after_run: list[str] = field(default_factory=list)
    attempts: int = 0
    """New distributions this run has tried to install (the per-run limit counts them)."""


class InstallBudget:
    """Install attempts per user in the last 24 hours (this process's memory: a restart forgets,
    which costs at most one more day's cap)."""

    def __init__(self, per_day: int, clock=time.monotonic) -> None:
        self.per_day = per_day
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}

    def take(self, user_id: str) -> bool:
        """Count one attempt for the user; False (nothing counted) when the day's are used."""
        now = self._clock()
        seen = self._attempts.setdefault(user_id, deque())
        while seen and now - seen[0] >= DAY:
            seen.popleft()
        if len(seen) >= self.per_day:
            return False
        seen.append(now)
        return True


@dataclass
class InstallOutcome:
    version: str = ""
    packages: list[str] = field(default_factory=list)
    reason: str = ""


class PackageInstaller:
    def __init__(
        self,
        policy: SandboxPolicy,
        engine: Engine,
        cache: PackageCache,
        catalog: PackageCatalog,
        *,
        ca_bundle: Path | None = None,
        max_concurrent_installs: int = 2,
        max_per_run: int = 5,
        max_per_user_day: int = 20,
    ) -> None:
        self.policy = policy
        self.engine = engine
        self.cache = cache
        self.catalog = catalog
        self.ca_bundle = ca_bundle
        self.max_per_run = max_per_run
        self.budget = InstallBudget(max_per_user_day)
        self._network_ready = False
        self._install_slots = asyncio.Semaphore(max_concurrent_installs)
        self._modules: dict[str, set[str] | None] = {}
        self._image_id_seen: tuple[str, float] | None = None

    # Before the run

    async def prepare(self, code: str, run_id: str, user_id: str, also=frozenset()) -> PackagePlan:
        """The packages the code imports, and those of `also` (a session's earlier imports)."""
        plan = PackagePlan()
        imports = (imports_in(code) | also) - set(sys.stdlib_module_names) - RUNTIME_MODULES
        if not imports:
            return plan
        await self._identify_image(plan)
        if plan.image_modules is None:
            return plan  # the image cannot say what it has: the runtime fallback still works
        wanted = set()
        for module in sorted(imports - plan.image_modules):
            if self.catalog.is_approved(module):
                wanted.add(self.catalog.distribution(module))
        await self._provide(plan, wanted, run_id, user_id)
        return plan

    # After a failed run

    async def fallback(self, plan: PackagePlan, stderr: str, run_id: str, user_id: str) -> bool:
        """Install the approved package the run died without; True when running again can help."""
        dist = await self._missing_approved(plan, stderr)
        if dist is None:
            return False
        await self._provide(plan, {dist}, run_id, user_id)
        if dist not in plan.mounts:
            return False
        # Imports detection cannot see may need other cached packages too: the one retry gets
        # every package already in the cache, so it does not die on the next such import.
        key = plan.image_key
        assert key is not None  # set by _missing_approved
        for cached in self.cache.distributions(key):
            plan.mounts.setdefault(cached, self.cache.entry_dir(key, cached))
        return True

    async def install_for_next_run(
        self, plan: PackagePlan, stderr: str, run_id: str, user_id: str
    ) -> None:
        """After the one retry: still install what it died without, so the next run has it."""
        dist = await self._missing_approved(plan, stderr)
        if dist is None:
            return
        await self._provide(plan, {dist}, run_id, user_id)
        if dist in plan.mounts:
            plan.installed_after_run.append(dist)

    async def _missing_approved(self, plan: PackagePlan, stderr: str) -> str | None:
        module = missing_module(stderr)
        if module is None or module in sys.stdlib_module_names or module in RUNTIME_MODULES:
            return None
        if not self.catalog.is_approved(module):
            return None
        dist = self.catalog.distribution(module)
        if dist in plan.mounts or dist in plan.failed:
            return None  # mounted and still missing, or already failed: installing cannot help
        if plan.image_key is None:
            await self._identify_image(plan)
        if plan.image_key is None or (plan.image_modules and module in plan.image_modules):
            return None
        return dist

    def explain(self, plan: PackagePlan, stderr: str) -> str:
        """What to add to a failed run's message when it died on a missing package."""
        module = missing_module(stderr)
        if module is None or module in sys.stdlib_module_names:
            return ""
        dist = self.catalog.distribution(module)
        if not self.catalog.is_approved(module):
            return self.catalog.refusal(module)
        if dist in plan.failed:
            reason = plan.failed[dist]
            if reason.startswith("not installed"):
                return f"the approved package {dist!r} was {reason}"
            return f"installing the approved package {dist!r} failed: {reason}"
        if dist in plan.installed_after_run:
            return f"the approved package {dist!r} is installed now: run the code again"
        return ""

    # Installing

    async def _image_id(self) -> str | None:
        if self._image_id_seen and time.monotonic() - self._image_id_seen[1] < IMAGE_ID_TTL:
            return self._image_id_seen[0]
        return await self.engine.call(self._image_id_blocking)

    def _image_id_blocking(self) -> str | None:
        if self._image_id_seen and time.monotonic() - self._image_id_seen[1] < IMAGE_ID_TTL:
            return self._image_id_seen[0]
        try:
            image_id = self.engine.image_id(self.policy.image)
        except (EngineUnavailable, EngineError):
            self._image_id_seen = None
            return None  # the run itself reports a missing image or engine, with the fix
        self._image_id_seen = (image_id, time.monotonic())
        return image_id

    async def _identify_image(self, plan: PackagePlan) -> None:
        image_id = await self._image_id()
        if image_id is not None:
            plan.image_key = image_key(image_id)
            plan.image_modules = await self._image_modules(plan.image_key, image_id)

    async def _image_modules(self, key: str, image_id: str) -> set[str] | None:
        if key in self._modules:
            return self._modules[key]
        modules = self.cache.image_modules(key)
        if modules is None:
            modules = await self.engine.call(self._read_image_modules, key, image_id)
        if modules is not None:  # a failed read is tried again by the next run
            self._modules[key] = modules
        return modules

    def _read_image_modules(self, key: str, image_id: str) -> set[str] | None:
        args = self.policy.probe_container_args(image_id)
        try:
            raw = self.engine.read_image_file(args, IMAGE_MODULES_FILE, MAX_MODULE_LIST_BYTES)
            modules = json.loads(raw or b"null")["modules"] if raw else None
        except (EngineUnavailable, EngineError, ValueError, KeyError, TypeError) as exc:
            log.warning("image module list unreadable", error=str(exc)[:200])
            return None
        if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
            log.warning(
                "image has no module list; package detection uses the runtime fallback only"
            )
            return None
        self.cache.store_image_modules(key, modules)
        return set(modules)

    async def _provide(self, plan: PackagePlan, dists: set[str], run_id: str, user_id: str) -> None:
        key = plan.image_key
        if key is None or not dists:
            return
        started = time.monotonic()
        allowed = []
        for dist in sorted(dists):
            if self.cache.has(key, dist):
                allowed.append(dist)
            elif plan.attempts >= self.max_per_run:
                plan.failed[dist] = (
                    f"not installed: a run installs at most {self.max_per_run} new packages"
                )
            elif not self.budget.take(user_id):
                plan.failed[dist] = (
                    f"not installed: at most {self.budget.per_day} package installs per user "
                    "in 24 hours"
                )
            else:
                plan.attempts += 1
                allowed.append(dist)
        refused = sorted(set(dists) - set(allowed))
        if refused:
            log.warning("package installs over a limit", distributions=refused[:20])
        waited = await asyncio.gather(
            *(self._provide_one(plan, key, dist, run_id, user_id) for dist in allowed)
        )
        if any(waited):
            plan.install_seconds += time.monotonic() - started

    async def _provide_one(
        self, plan: PackagePlan, key: str, dist: str, run_id: str, user_id: str
    ) -> bool:
        """Make `dist` available to the plan; True when it was not already in the cache."""
        if self.cache.has(key, dist):
            self._use(plan, key, dist)
            return False
        async with self.cache.locked(key, dist):
            if not self.cache.has(key, dist):  # another run may have installed it meanwhile
                async with self._install_slots:
                    outcome = await self._install(key, dist, run_id, user_id)
                if outcome.reason:
                    plan.failed[dist] = outcome.reason
                    log.warning("package install failed", distribution=dist, reason=outcome.reason)
                    return True
                plan.installed.append(f"{dist}=={outcome.version}")
                log.info("package installed", distribution=dist, version=outcome.version)
        self._use(plan, key, dist)
        return True

    def _use(self, plan: PackagePlan, key: str, dist: str) -> None:
        self.cache.mark_used(key, dist)
        plan.mounts[dist] = self.cache.entry_dir(key, dist)

    async def _install(self, key: str, dist: str, run_id: str, user_id: str) -> InstallOutcome:
        try:
            return await self.engine.call(self._install_blocking, key, dist, run_id, user_id)
        except (EngineUnavailable, EngineError, HostPathError, OSError) as exc:
            reason = str(exc)
            log.exception("package install step failed")
            return InstallOutcome(reason=f"the install step could not run: {reason[:300]}")

    def _install_blocking(self, key: str, dist: str, run_id: str, user_id: str) -> InstallOutcome:
        self._ensure_network()
        work = self._new_work_dir(key)
        try:
            args = self.policy.install_container_args(
                run_id=run_id, user_id=str(user_id), work_dir=work, distribution=dist
            )
            exit_code = self.engine.run_to_completion(args, self.policy.install_timeout)
            if exit_code is None:
                return InstallOutcome(
                    reason=f"the install took longer than {self.policy.install_timeout:g} s"
                )
            result = self._read_result(work)
            if result is None:
                return InstallOutcome(reason=f"the install step failed (exit status {exit_code})")
            if not result.get("ok"):
                return InstallOutcome(reason=self._failure_reason(result))
            version = str(result.get("version", ""))[:100]
            packages = [str(p)[:200] for p in result.get("packages", [])][:500]
            self.cache.commit(key, dist, work, version, packages)
            return InstallOutcome(version=version, packages=packages)
        finally:
            self.cache.discard(work)

    def _ensure_network(self) -> None:
        """The install network exists (the project creates it on first use)."""
        if not self._network_ready:
            self.engine.ensure_network(self.policy.install_network_args())
            self._network_ready = True

    def _new_work_dir(self, key: str) -> Path:
        """A fresh work folder for an install container, with the admin's extra CA in it."""
        work = self.cache.new_work_dir(key, self.policy.install_work_owner())
        try:
            if self.ca_bundle is not None:
                shutil.copyfile(self.ca_bundle, work / "ca.pem")
                (work / "ca.pem").chmod(0o644)
        except BaseException:
            self.cache.discard(work)
            raise
        return work

    def _failure_reason(self, result: dict) -> str:
        """pip's reason, led by what it hides: a certificate the install could not verify (a
        TLS-intercepting proxy) or an index it could not reach, with the setting to change."""
        detail = str(result.get("reason", "pip failed"))[:400]
        cause = result.get("cause")
        if cause == "certificate":
            fix = (
                "check that PACKAGE_CA_BUNDLE holds the proxy's CA certificate"
                if self.ca_bundle is not None
                else "behind a TLS-intercepting proxy, set PACKAGE_CA_BUNDLE to a PEM file with "
                "its CA certificate"
            )
            return f"the package index's TLS certificate is not trusted ({fix}); pip said: {detail}"
        if cause == "network":
            return (
                "the package index cannot be reached from the install container (check the "
                f"host's network, PACKAGE_PROXY and SANDBOX_PIP_INDEX_URL); pip said: {detail}"
            )
        return detail

    async def check_index(self, distribution: str) -> InstallOutcome:
        """Whether the package index answers for `distribution` from an install container,
        with the installs' network, proxy, index and CA settings (doctor); installs nothing."""
        key = await self.current_image_key()
        if key is None:
            return InstallOutcome(reason=f"the sandbox image {self.policy.image} is not there")
        try:
            return await self.engine.call(self._check_index_blocking, key, distribution)
        except (EngineUnavailable, EngineError, HostPathError, OSError) as exc:
            return InstallOutcome(reason=f"the install container could not run: {str(exc)[:300]}")

    def _check_index_blocking(self, key: str, distribution: str) -> InstallOutcome:
        self._ensure_network()
        work = self._new_work_dir(key)
        try:
            args = self.policy.install_container_args(
                run_id="doctor",
                user_id="",
                work_dir=work,
                distribution=distribution,
                check_only=True,
            )
            exit_code = self.engine.run_to_completion(args, min(self.policy.install_timeout, 120))
            if exit_code is None:
                return InstallOutcome(reason="the package index did not answer in time")
            result = self._read_result(work)
            if result is None:
                return InstallOutcome(reason=f"the index check failed (exit status {exit_code})")
            if not result.get("ok"):
                return InstallOutcome(reason=self._failure_reason(result))
            return InstallOutcome(version=str(result.get("version", ""))[:100])
        finally:
            self.cache.discard(work)

    @staticmethod
    def _read_result(work: Path) -> dict | None:
        # Written by the install script (not user code), but still read defensively.
        path = work / "result.json"
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
                return None
            data = json.loads(path.read_text(errors="replace"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # Maintenance

    async def image_has_module_list(self) -> bool:
        """Whether detection before the run works for the current image (doctor)."""
        plan = PackagePlan()
        await self._identify_image(plan)
        return plan.image_modules is not None

    def warm_package_root(self) -> Path | None:
        """Blocking: the current image's package folder, which a warm container mounts whole and
        read-only (entries appear by atomic rename, also later); None if the image is unknown."""
        image_id = self._image_id_blocking()
        return None if image_id is None else self.cache.mountable_image_dir(image_key(image_id))

    async def current_image_key(self) -> str | None:
        image_id = await self._image_id()
        return None if image_id is None else image_key(image_id)

    async def cleanup(self, max_age_days: float) -> CleanupReport:
        """Remove cached packages unused for `max_age_days` and the caches of other images."""
        key = await self.current_image_key()
        return await asyncio.to_thread(self.cache.cleanup, key, max_age_days)
