"""Output collection over tricky trees: the in-container collector and the host receiver."""

import io
import os
import tarfile

from sandbox_collect import Collector

from app.sandbox.outputs import OutputReceiver


def collect(root, destination, max_files=20, max_bytes=10 * 1024**2, max_depth=8):
    """Run the collector's scan and tar writer on a host folder, then receive the stream."""
    collector = Collector(str(root), max_files, max_bytes, max_depth)
    collector.scan()
    buffer = io.BytesIO()
    collector.write_tar(buffer)
    buffer.seek(0)
    receiver = OutputReceiver(destination, max_files, max_bytes)
    receiver.receive(buffer)
    return collector, receiver


def reasons(collector):
    return {s["name"]: s["reason"] for s in collector.skipped}


def test_links_fifos_and_hidden_files_are_never_read(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    (root / "result.csv").write_text("a,b\n1,2\n")
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink("/etc", root / "etc_dir")
    os.link(root / "result.csv", root / "hardlink.csv")  # a hard link is just another regular file
    os.mkfifo(root / "pipe")  # opening it would block forever
    (root / ".secret").write_text("hidden")
    collector, receiver = collect(root, tmp_path / "dest")
    names = sorted(f.name for f in receiver.files)
    assert names == ["hardlink.csv", "result.csv"]
    skipped = reasons(collector)
    assert "symbolic link" in skipped["passwd"] and "symbolic link" in skipped["etc_dir"]
    assert skipped["pipe"] == "not a regular file"
    assert skipped[".secret"] == "hidden"
    assert "root:" not in "".join(p.read_text() for p in (tmp_path / "dest").iterdir())


def test_nested_folders_are_flattened_to_safe_unique_names(tmp_path):
    root = tmp_path / "out"
    (root / "plots" / "deep").mkdir(parents=True)
    (root / "plot.png").write_bytes(b"top")
    (root / "plots" / "plot.png").write_bytes(b"nested")
    (root / "plots" / "deep" / "data.txt").write_text("deep")
    _, receiver = collect(root, tmp_path / "dest")
    assert sorted(f.name for f in receiver.files) == ["data.txt", "plot-2.png", "plot.png"]
    assert {f.path.parent for f in receiver.files} == {tmp_path / "dest"}


def test_depth_is_capped(tmp_path):
    root = tmp_path / "out"
    deep = root.joinpath(*[f"d{i}" for i in range(12)])
    deep.mkdir(parents=True)
    (deep / "x.txt").write_text("x")
    collector, receiver = collect(root, tmp_path / "dest", max_depth=4)
    assert receiver.files == []
    assert any("too deep" in s["reason"] for s in collector.skipped)


def test_ten_thousand_files_are_capped_in_count(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    for i in range(10_000):
        (root / f"f{i:05d}.txt").write_text(str(i))
    collector, receiver = collect(root, tmp_path / "dest", max_files=20)
    assert len(receiver.files) == 20
    assert len(collector.skipped) + collector.skipped_more == 9_980
    assert len(collector.skipped) <= 50  # the report itself stays small


def test_a_huge_file_is_skipped_not_read(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    with open(root / "huge.bin", "wb") as fh:  # sparse: 50 GB apparent size, no disk used
        fh.truncate(50 * 1024**3)
    (root / "small.txt").write_text("ok")
    collector, receiver = collect(root, tmp_path / "dest", max_bytes=1024**2)
    assert [f.name for f in receiver.files] == ["small.txt"]
    assert "total size limit" in reasons(collector)["huge.bin"]


def _tar(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def _member(name, data=b"", kind=tarfile.REGTYPE, **extra):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, (data if kind == tarfile.REGTYPE else None)


def test_receiver_trusts_no_member_type_or_name(tmp_path):
    stream = _tar(
        [
            _member("../../escape.txt", b"escape"),
            _member("/etc/cron.d/evil", b"abs"),
            _member("link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
            _member("hard", kind=tarfile.LNKTYPE, linkname="/etc/shadow"),
            _member("dev", kind=tarfile.CHRTYPE, devmajor=1, devminor=3),
            _member("fifo", kind=tarfile.FIFOTYPE),
            _member("@everyone \u202egnp.exe", b"x"),
        ]
    )
    destination = tmp_path / "dest"
    receiver = OutputReceiver(destination, 20, 1024**2)
    receiver.receive(stream)
    assert sorted(f.name for f in receiver.files) == ["_everyone gnp.exe", "escape.txt", "evil"]
    assert sorted(os.listdir(destination)) == sorted(f.name for f in receiver.files)
    assert not (tmp_path / "escape.txt").exists()
    assert {s.name for s in receiver.skipped} == {"link", "hard", "dev", "fifo"}


def test_receiver_caps_count_and_bytes_while_reading(tmp_path):
    stream = _tar([_member(f"f{i}.bin", b"x" * 400) for i in range(5)])
    receiver = OutputReceiver(tmp_path / "dest", max_files=3, max_bytes=1000)
    receiver.receive(stream)
    assert [f.name for f in receiver.files] == [
        "f0.bin",
        "f1.bin",
    ]  # 800 bytes; a third would pass 1000
    assert len(receiver.skipped) == 3
    assert sum(f.size for f in receiver.files) <= 1000


def test_receiver_survives_a_truncated_archive(tmp_path):
    data = _tar([_member("a.txt", b"a" * 5000)]).getvalue()[:1500]
    receiver = OutputReceiver(tmp_path / "dest", 5, 1024**2)
    receiver.receive(io.BytesIO(data))
    assert receiver.files == []
    assert not (tmp_path / "dest" / "a.txt").exists()  # no partial file left behind
    assert receiver.skipped


def test_receiver_never_overwrites_or_follows_a_planted_link(tmp_path):
    destination = tmp_path / "dest"
    destination.mkdir()
    target = tmp_path / "victim.txt"
    target.write_text("original")
    os.symlink(target, destination / "a.txt")
    receiver = OutputReceiver(destination, 5, 1024**2)
    receiver.receive(_tar([_member("a.txt", b"new")]))
    assert target.read_text() == "original"
    assert [f.name for f in receiver.files] == ["a-2.txt"]
    assert (destination / "a-2.txt").read_bytes() == b"new"
