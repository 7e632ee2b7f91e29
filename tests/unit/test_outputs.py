"""Output collection over tricky trees and hostile streams: the warden's side and the host's."""

import io
import itertools
import os
import struct
import threading
import time

import pytest
import sandbox_collect
from sandbox_collect import Collector

from app.sandbox import outputs
from app.sandbox.outputs import OutputReceiver
from tests.fakes.engine import output_stream


def collect(root, destination, max_files=20, max_bytes=10 * 1024**2, max_depth=8):
    """Run the warden's scan and stream writer on a host folder, then receive the stream."""
    collector = Collector(str(root), max_files, max_bytes, max_depth)
    collector.scan()
    buffer = io.BytesIO()
    collector.write_stream(buffer)
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


def test_both_sides_agree_on_the_framing():
    for name in (
        "STREAM_MAGIC",
        "FILE",
        "DATA",
        "DONE",
        "END",
        "STATE",
        "STATE_FILES",
        "MAX_NOTES_BYTES",
        "MAX_NAME_BYTES",
        "MAX_CHUNK",
    ):
        assert getattr(sandbox_collect, name) == getattr(outputs, name), name


def receive(data: bytes, destination, max_files=20, max_bytes=1024**2) -> OutputReceiver:
    receiver = OutputReceiver(destination, max_files, max_bytes)
    receiver.receive(io.BytesIO(data))
    return receiver


def record(name: bytes, *chunks: bytes, complete: bool = True) -> bytes:
    body = b"".join(b"D" + struct.pack(">I", len(c)) + c for c in chunks)
    return b"F" + struct.pack(">H", len(name)) + name + body + b"Z" + bytes([complete])


def test_receiver_trusts_no_name(tmp_path):
    stream = output_stream(
        {
            "../../escape.txt": b"escape",
            "/etc/cron.d/evil": b"abs",
            "@everyone \u202egnp.exe": b"x",
        }
    )
    destination = tmp_path / "dest"
    receiver = receive(stream, destination)
    assert sorted(f.name for f in receiver.files) == ["_everyone gnp.exe", "escape.txt", "evil"]
    assert sorted(os.listdir(destination)) == sorted(f.name for f in receiver.files)
    assert not (tmp_path / "escape.txt").exists()


def test_a_stream_over_the_caps_ends_there(tmp_path):
    stream = output_stream({f"f{i}.bin": b"x" * 400 for i in range(5)})
    receiver = receive(stream, tmp_path / "dest", max_files=3, max_bytes=1000)
    assert [f.name for f in receiver.files] == ["f0.bin", "f1.bin"]  # a third would pass 1000
    assert sum(f.size for f in receiver.files) <= 1000
    assert sorted(os.listdir(tmp_path / "dest")) == ["f0.bin", "f1.bin"]  # no partial third
    assert "more than 1000 bytes" in receiver.skipped[-1].reason
    counted = receive(stream, tmp_path / "d2", max_files=2, max_bytes=10**6)
    assert len(counted.files) == 2 and "more than 2 files" in counted.skipped[-1].reason


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (b"ustar\0" + b"\0" * 500, "not an output stream"),
        (outputs.STREAM_MAGIC + b"F" + struct.pack(">H", 65535), "longer than any path"),
        (outputs.STREAM_MAGIC + b"F\x00\x01aD" + struct.pack(">I", 2**32 - 1), "larger than"),
        (outputs.STREAM_MAGIC + b"X", "unexpected record"),
        (outputs.STREAM_MAGIC + record(b"a.txt", b"abc")[:-3], "cut short"),
    ],
)
def test_a_hostile_stream_is_refused_before_anything_large_is_read(tmp_path, hostile, reason):
    receiver = receive(hostile, tmp_path / "dest")
    assert receiver.files == []
    assert reason in receiver.skipped[-1].reason, receiver.skipped
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []


def test_what_arrived_whole_is_kept_when_the_stream_breaks_later(tmp_path):
    good = record(b"good.txt", b"fine")
    broken = record(b"half.txt", b"abc" * 10)[:-20]
    receiver = receive(outputs.STREAM_MAGIC + good + broken, tmp_path / "dest")
    assert [f.name for f in receiver.files] == ["good.txt"]
    assert os.listdir(tmp_path / "dest") == ["good.txt"]  # the partial file is gone


def test_a_file_that_changed_while_collected_is_dropped(tmp_path):
    stream = outputs.STREAM_MAGIC + record(b"moving.txt", b"abc", complete=False) + b"E"
    receiver = receive(stream, tmp_path / "dest")
    assert receiver.files == [] and receiver.skipped[0].reason == "changed while collecting"


def test_skipped_entries_stay_few(tmp_path):
    stream = outputs.STREAM_MAGIC
    stream += b"".join(record(f"f{i}".encode(), b"x", complete=False) for i in range(500))
    receiver = receive(stream + b"E", tmp_path / "dest")
    assert len(receiver.skipped) == outputs.MAX_SKIPPED


def test_pax_headers_are_never_parsed(tmp_path):
    # A tar with a pax header built to be parsed in quadratic time (CVE-2024-6232) is just not an
    # output stream: the host reads seven bytes of it.
    body = b"1" * 200_000
    header = b"././@PaxHeader".ljust(100, b"\0") + b"\0" * 24 + b"%011o\0" % len(body)
    started = time.monotonic()
    receiver = receive(header.ljust(512, b"\0") + body, tmp_path / "dest")
    assert time.monotonic() - started < 1
    assert "not an output stream" in receiver.skipped[0].reason


def test_reading_a_huge_stream_holds_the_gil_only_briefly(tmp_path):
    files = {f"f{i}.bin": os.urandom(1024) * 1024 for i in range(8)}  # 8 MiB
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    thread = threading.Thread(target=tick)
    thread.start()
    receiver = receive(output_stream(files), tmp_path / "dest", max_bytes=10 * 1024**2)
    stop.set()
    thread.join()
    assert len(receiver.files) == 8
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps, default=0) < 0.5


def test_receiver_never_overwrites_or_follows_a_planted_link(tmp_path):
    destination = tmp_path / "dest"
    destination.mkdir()
    target = tmp_path / "victim.txt"
    target.write_text("original")
    os.symlink(target, destination / "a.txt")
    receiver = receive(output_stream({"a.txt": b"new"}), destination)
    assert target.read_text() == "original"
    assert [f.name for f in receiver.files] == ["a-2.txt"]
    assert (destination / "a-2.txt").read_bytes() == b"new"


def test_the_state_folder_travels_beside_the_outputs_never_among_them(tmp_path):
    out, state = tmp_path / "out", tmp_path / "state"
    out.mkdir()
    state.mkdir()
    (out / "result.csv").write_text("a\n1\n")
    (state / "state").write_bytes(b"snapshot")
    (state / "notes").write_text('["not kept: con (sqlite3.Connection)"]')
    (state / "other").write_text("never sent")
    os.symlink("/etc/passwd", state / "state.part")
    collector = Collector(str(out), 20, 1024**2, 8, str(state), 1024)
    collector.scan()
    buffer = io.BytesIO()
    collector.write_stream(buffer)
    buffer.seek(0)
    receiver = OutputReceiver(
        tmp_path / "dest", 20, 1024**2, state_destination=tmp_path / "session", state_max_bytes=1024
    )
    receiver.receive(buffer)

    assert [f.name for f in receiver.files] == ["result.csv"]
    assert sorted(receiver.state_files) == ["notes", "state"]
    assert receiver.state_files["state"].read_bytes() == b"snapshot"
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["result.csv"]


def test_a_state_file_over_its_cap_is_not_sent(tmp_path):
    out, state = tmp_path / "out", tmp_path / "state"
    out.mkdir()
    state.mkdir()
    (state / "state").write_bytes(b"x" * 2048)
    collector = Collector(str(out), 20, 1024**2, 8, str(state), 1024)
    collector.scan()
    buffer = io.BytesIO()
    collector.write_stream(buffer)
    assert b"S" + struct.pack(">H", 5) + b"state" not in buffer.getvalue()


def state_record(name: bytes, data: bytes) -> bytes:
    return b"S" + record(name, data)[1:]


@pytest.mark.parametrize(
    "stream, why",
    [
        (state_record(b"state", b"abc"), "no state destination"),
        (state_record(b"../evil", b"abc"), "a name that is not a state file"),
        (state_record(b"state", b"a") + state_record(b"state", b"b"), "twice"),
        (state_record(b"state", b"x" * 2000), "over the cap"),
    ],
)
def test_state_records_outside_the_rules_end_the_stream(tmp_path, stream, why):
    destination = None if why == "no state destination" else tmp_path / "session"
    receiver = OutputReceiver(
        tmp_path / "dest", 20, 1024**2, state_destination=destination, state_max_bytes=1024
    )
    receiver.receive(io.BytesIO(outputs.STREAM_MAGIC + stream + b"E"))
    assert any(s.name == outputs.STREAM for s in receiver.skipped), why
    if why != "twice":
        assert receiver.state_files == {}
    assert not (tmp_path / "evil").exists()
