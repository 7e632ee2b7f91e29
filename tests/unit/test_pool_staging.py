"""Placing a request's files into a warm container's input folder (host side, no Docker)."""

import os

import pytest

from app.sandbox.pool import StagingError, WarmContainer


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
