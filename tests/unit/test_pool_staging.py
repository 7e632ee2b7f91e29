"""Placing a request's files into a warm container's input folder (host side, no Docker)."""

import os
import time

import pytest

from app.sandbox.pool import StagingError, WarmContainer
from app.sandbox.staging import ORPHAN_GRACE, make_staging, remove_orphans, remove_staging


class _Quiet:
    def close(self):
        pass


@pytest.fixture
def warm(tmp_path):
    staging = tmp_path / "pool" / "abc"
    staging.mkdir(parents=True)
    return WarmContainer("cid", _Quiet(), None, 20001, staging, pool_id="abc")


def test_regular_files_are_hard_linked_by_filename(warm, tmp_path):
    source = tmp_path / "user"
    source.mkdir()
    (source / "f1.csv").write_text("a,b\n1,2\n")
    warm.stage(source, ["f1.csv"])
    staged = warm.input_dir / "f1.csv"
    assert staged.read_text() == "a,b\n1,2\n"
    assert staged.stat().st_ino == (source / "f1.csv").stat().st_ino


def test_links_special_files_and_missing_files_are_not_exposed(warm, tmp_path):
    source = tmp_path / "user"
    source.mkdir()
    (source / "secret").write_text("host secret")
    os.symlink(source / "secret", source / "link.txt")
    os.mkfifo(source / "pipe")
    warm.stage(source, ["link.txt", "pipe", "gone.csv"])
    assert list(warm.input_dir.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape.csv", "sub/f.csv", "..", ""])
def test_unsafe_names_are_refused(warm, tmp_path, name):
    with pytest.raises(StagingError):
        warm.stage(tmp_path, [name])


def test_a_warm_containers_folders_come_and_go_together(tmp_path):
    input_dir, state_dir = make_staging(tmp_path, "abc", with_state=True)
    warm = WarmContainer("cid", _Quiet(), None, 20001, input_dir, pool_id="abc")
    assert state_dir == warm.state_dir  # where a run's snapshot is placed
    for folder in (input_dir, state_dir):
        assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o755
    (state_dir / "state").write_bytes(b"snapshot")
    remove_staging(input_dir)
    assert list(tmp_path.iterdir()) == []
    assert make_staging(tmp_path, "def", with_state=False)[1] is None


def test_orphaned_folders_go_with_their_session_folder_live_and_young_ones_stay(tmp_path):
    for pool_id in ("gone", "alive", "young"):
        make_staging(tmp_path, pool_id, with_state=True)
    old = time.time() - ORPHAN_GRACE - 10
    for name in ("gone", "gone-session", "alive", "alive-session"):
        os.utime(tmp_path / name, (old, old))
    remove_orphans(tmp_path, {"alive"})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["alive", "alive-session", "young", "young-session"]
