"""The cleanup pass on a real disk with mongomock-motor: expiry, orphans both ways, idempotence."""

import asyncio
import os
import time

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.files import CleanupService, FileStore, InMemoryFileRepository, mongo
from tests.unit.test_file_store import Clock

HOUR = 3600


class WallClock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
async def setup(tmp_path):
    repo = mongo.MongoFileRepository(AsyncMongoMockClient(tz_aware=True)["test"])
    await repo.ensure_ready()
    clock = Clock()
    store = FileStore(
        tmp_path / "data", repo, clock=clock, max_files_per_user=10, expiration_hours=48
    )
    wall = WallClock()
    service = CleanupService(store, grace_seconds=HOUR, wall_clock=wall)
    return store, clock, wall, service


def age(path, seconds):
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp), follow_symlinks=False)


async def test_expired_files_are_removed_from_disk_and_metadata(setup):
    store, clock, wall, service = setup
    old = await store.save("u1", "old.csv", b"a\n1\n")
    clock.advance(hours=24)
    fresh = await store.save("u1", "fresh.csv", b"a\n2\n")
    clock.advance(hours=25)
    report = await service.run_once()
    assert report.expired == 1
    assert not store.absolute_path(old).exists() and store.absolute_path(fresh).exists()
    assert await store.repository.get("u1", old.file_id) is None
    assert [f.file_id for f in await store.list("u1")] == [fresh.file_id]


async def test_metadata_whose_file_is_gone_is_removed(setup):
    store, clock, wall, service = setup
    stored = await store.save("u1", "a.csv", b"a\n1\n")
    store.absolute_path(stored).unlink()
    report = await service.run_once()
    assert report.missing_files == 1
    assert await store.repository.get("u1", stored.file_id) is None


async def test_files_without_metadata_are_removed_after_the_grace_period(setup):
    store, clock, wall, service = setup
    kept = await store.save("u1", "kept.csv", b"a\n1\n")
    age(store.absolute_path(kept), 5 * HOUR)
    orphan = store.user_dir("u1") / "deadbeef.csv"
    orphan.write_bytes(b"lost")
    in_flight = store.incoming_dir / "cafebabe.part"
    in_flight.write_bytes(b"half an upload")
    stale_part = store.incoming_dir / "0badf00d.part"
    stale_part.write_bytes(b"crashed upload")
    age(stale_part, 2 * HOUR)

    report = await service.run_once()
    assert report.orphan_files == 1 and stale_part.exists() is False
    assert orphan.exists() and in_flight.exists()  # younger than the grace period

    age(orphan, 2 * HOUR)
    report = await service.run_once()
    assert report.orphan_files == 1 and not orphan.exists()
    assert store.absolute_path(kept).exists() and in_flight.exists()


async def test_dry_run_reports_without_removing(setup):
    store, clock, wall, service = setup
    stored = await store.save("u1", "a.csv", b"a\n1\n")
    orphan = store.user_dir("u1") / "deadbeef.csv"
    orphan.write_bytes(b"lost")
    age(orphan, 2 * HOUR)
    clock.advance(hours=49)
    report = await service.run_once(dry_run=True)
    assert (report.expired, report.orphan_files, report.dry_run) == (1, 1, True)
    assert orphan.exists() and store.absolute_path(stored).exists()
    assert await store.repository.get("u1", stored.file_id) is not None


async def test_two_passes_at_once_are_safe_and_a_second_pass_finds_nothing(setup):
    store, clock, wall, service = setup
    for i in range(5):
        await store.save("u1", f"f{i}.csv", b"a\n1\n")
    gone = await store.save("u1", "gone.csv", b"a\n1\n")
    store.absolute_path(gone).unlink()
    for i in range(3):
        orphan = store.user_dir("u2") / f"orphan{i}.bin"
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"x")
        age(orphan, 2 * HOUR)
    clock.advance(hours=49)
    first, second = await asyncio.gather(service.run_once(), service.run_once())
    assert first.expired + first.missing_files >= 5  # both may count what they saw
    assert list(store.data_dir.joinpath("users").rglob("*.*")) == []
    assert await store.repository.all_files() == []
    again = await service.run_once()
    assert again.counts() == {
        "expired": 0,
        "missing_files": 0,
        "orphan_files": 0,
        "staging": 0,
        "containers": 0,
        "packages": 0,
        "sessions": 0,
    }


async def test_in_memory_metadata_never_deletes_stored_files(tmp_path):
    store = FileStore(tmp_path / "data", InMemoryFileRepository())
    orphan = store.user_dir("u1") / "deadbeef.csv"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"kept")
    age(orphan, 10 * HOUR)
    report = await CleanupService(store, grace_seconds=HOUR).run_once()
    assert orphan.exists() and report.orphan_files == 0
    assert "kept in memory" in report.notes[0]


async def test_old_run_staging_folders_are_removed(setup):
    store, clock, wall, service = setup
    old = store.data_dir / "staging" / "abc"
    (old / "input").mkdir(parents=True)
    age(old, 2 * HOUR)
    young = store.data_dir / "staging" / "def"
    young.mkdir()
    report = await service.run_once()
    assert report.staging == 1 and not old.exists() and young.exists()


async def test_run_periodically_keeps_going_after_a_failed_pass(setup):
    store, clock, wall, service = setup
    calls = []

    async def flaky(dry_run=False):
        calls.append(dry_run)
        if len(calls) == 1:
            raise RuntimeError("boom")

    service.run_once = flaky
    task = asyncio.create_task(service.run_periodically(0.0005))
    while len(calls) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3


async def test_cleanup_pass_prunes_the_package_cache_through_the_runner(tmp_path):
    from types import SimpleNamespace

    from app.layout import DataLayout
    from app.sandbox import (
        PackageCache,
        PackageCatalog,
        PackageInstaller,
        SandboxPolicy,
        SandboxRunner,
    )
    from app.sandbox.packages.cache import CleanupReport as PackageReport

    calls = []

    class Installer(PackageInstaller):
        async def cleanup(self, max_age_days):
            calls.append(max_age_days)
            return PackageReport(removed_entries=["a", "b"], removed_images=["old"])

    class Runner(SandboxRunner):
        async def reap_leftovers(self):
            return 0

        async def count_leftovers(self):
            return 0

    policy = SandboxPolicy(image="img")
    installer = Installer(policy, None, PackageCache(tmp_path / "packages"), PackageCatalog())
    runner = Runner(policy, None, max_timeout=10, packages=installer)
    store = SimpleNamespace(
        repository=SimpleNamespace(persistent=False), layout=DataLayout(tmp_path)
    )
    service = CleanupService(store, runner, package_cache_days=3)
    report = await service.run_once()
    assert calls == [3] and report.packages == 3
    dry = await service.run_once(dry_run=True)
    assert calls == [3] and dry.packages == 0
    assert "package cache is not checked in a dry run" in " ".join(dry.notes)
