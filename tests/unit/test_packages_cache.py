"""The package cache on disk: atomic publication, locking, listing and cleanup."""

import asyncio
import json
import os
import time

from app.sandbox.packages.cache import PackageCache


def fake_install(cache, key, dist, version="1.0"):
    """What an install container leaves in its work folder: a site tree."""
    work = cache.new_work_dir(key, None)
    (work / "site" / dist).mkdir(parents=True)
    (work / "site" / dist / "__init__.py").write_text(f"VERSION = {version!r}\n")
    cache.commit(key, dist, work, version, [f"{dist}=={version}"])
    cache.discard(work)


def test_commit_publishes_a_complete_entry(tmp_path):
    cache = PackageCache(tmp_path)
    assert not cache.has("img1", "toolz")
    fake_install(cache, "img1", "toolz")
    entry = cache.entry_dir("img1", "toolz")
    assert cache.has("img1", "toolz")
    assert (entry / "site" / "toolz" / "__init__.py").is_file()
    assert json.loads((entry / "meta.json").read_text())["version"] == "1.0"
    assert list((tmp_path / "img1" / ".work").iterdir()) == []  # no work folder left behind
    [listed] = cache.entries()
    assert (listed.distribution, listed.version, listed.image_key) == ("toolz", "1.0", "img1")
    assert listed.size > 0


def test_a_second_commit_of_the_same_package_keeps_the_first(tmp_path):
    cache = PackageCache(tmp_path)
    fake_install(cache, "img1", "toolz", "1.0")
    fake_install(cache, "img1", "toolz", "2.0")
    assert (
        json.loads((cache.entry_dir("img1", "toolz") / "meta.json").read_text())["version"] == "1.0"
    )


async def test_the_lock_lets_one_task_install_and_the_other_reuse(tmp_path):
    cache = PackageCache(tmp_path)
    installs = []

    async def need(name):
        async with cache.locked("img1", "toolz"):
            if not cache.has("img1", "toolz"):
                installs.append(name)
                await asyncio.sleep(0.2)  # a slow install: the other task must wait, not start one
                fake_install(cache, "img1", "toolz")
        return cache.has("img1", "toolz")

    assert await asyncio.gather(need("a"), need("b")) == [True, True]
    assert len(installs) == 1


def test_cleanup_removes_unused_entries_old_images_and_crashed_installs(tmp_path):
    cache = PackageCache(tmp_path)
    fake_install(cache, "current", "toolz")
    fake_install(cache, "current", "tqdm")
    fake_install(cache, "oldimage", "toolz")
    old = time.time() - 10 * 86400
    os.utime(cache.entry_dir("current", "tqdm"), (old, old))
    crashed = cache.new_work_dir("current", None)
    os.utime(crashed, (old, old))
    fresh_work = cache.new_work_dir("current", None)

    report = cache.cleanup("current", max_age_days=7)

    assert report.removed_entries == ["current/tqdm"]
    assert report.removed_images == ["oldimage"]
    assert report.removed_work == 1 and report.kept_entries == 1 and report.freed_bytes > 0
    assert cache.has("current", "toolz") and not cache.has("current", "tqdm")
    assert not (tmp_path / "oldimage").exists()
    assert not crashed.exists() and fresh_work.exists()  # an install in progress is left alone


def test_mark_used_keeps_an_entry_from_cleanup(tmp_path):
    cache = PackageCache(tmp_path)
    fake_install(cache, "img", "toolz")
    old = time.time() - 10 * 86400
    os.utime(cache.entry_dir("img", "toolz"), (old, old))
    cache.mark_used("img", "toolz")
    assert cache.cleanup("img", max_age_days=7).removed_entries == []


def test_cleanup_without_a_known_image_keeps_every_image(tmp_path):
    cache = PackageCache(tmp_path)
    fake_install(cache, "a", "toolz")
    fake_install(cache, "b", "toolz")
    report = cache.cleanup(None, max_age_days=7)
    assert report.removed_images == [] and "unknown" in report.note
    assert cache.has("a", "toolz") and cache.has("b", "toolz")


def test_distributions_lists_only_complete_entries(tmp_path):
    cache = PackageCache(tmp_path)
    fake_install(cache, "img", "toolz")
    fake_install(cache, "img", "tqdm")
    (tmp_path / "img" / "half-made").mkdir()  # no meta.json: not an entry
    assert cache.distributions("img") == ["toolz", "tqdm"]
    assert cache.distributions("other") == []
