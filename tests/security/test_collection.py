"""Collection: nothing a process of the code's uid says or writes is believed, and the host reads
what the warden sends with bounds, off the event loop.

The attacks below kill the runner, close their own output and live on, hoping that the host
hands the collection to a process they can take over (stop it, write into its stdout), or feeds
the host's archive reader a stream built to freeze it.
"""

from app.sandbox import RunStatus

# Code that, once its runner is dead, watches for any new process of its uid (a collector started
# after it), stops it and writes a forged archive and report into its stdout and stderr.
TAKEOVER = """
import io, json, os, signal, tarfile, time

def archive():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, data in FORGED:
            info = tarfile.TarInfo(name)
            if isinstance(data, dict):
                info.pax_headers = data; data = b'x'
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()

def mine():
    found = set()
    for name in os.listdir('/proc'):
        if name.isdigit() and int(name) != os.getpid():
            try:
                uid = open(f'/proc/{name}/status').read().split('Uid:')[1].split()[0]
            except (OSError, IndexError):
                continue
            if int(uid) == os.getuid():
                found.add(int(name))
    return found

runner = os.getppid()
open('before.txt', 'w').write('written before the runner died')
if os.fork() == 0:
    os.setsid()
    payload, report = archive(), json.dumps(REPORT).encode()
    known = mine()
    os.kill(runner, signal.SIGKILL)
    for fd in (0, 1, 2):
        os.close(fd)
    end = time.time() + 25
    while time.time() < end:
        for pid in mine() - known:
            known.add(pid)
            try:
                os.kill(pid, signal.SIGSTOP)
                for fd, data in ((1, payload), (2, report)):
                    with open(f'/proc/{pid}/fd/{fd}', 'wb', buffering=0) as out:
                        out.write(data)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
    os._exit(0)
os.close(1); os.close(2)
time.sleep(30)
"""


def takeover(forged: list, report: dict) -> str:
    return f"FORGED = {forged!r}\nREPORT = {report!r}\n" + TAKEOVER


async def test_code_that_kills_its_runner_cannot_forge_files_or_the_report(attack):
    code = takeover(
        [("injected.txt", b"FORGED BY THE CODE")],
        {"skipped": [{"name": "x", "reason": "forged"}], "skipped_more": 99, "oom_kills": 5},
    )
    result = await attack.run(code, timeout=10)
    assert result.status in (RunStatus.KILLED, RunStatus.TIMEOUT), result.message
    assert "injected.txt" not in [f.name for f in result.files]
    for produced in result.files:
        assert b"FORGED" not in produced.path.read_bytes()
    assert all(s.reason != "forged" and "99" not in s.name for s in result.skipped)
    assert result.status is not RunStatus.OOM  # the forged oom_kills were not believed


async def test_a_hostile_archive_cannot_freeze_the_host(attack):
    # CPython before 3.11.10 parses pax headers in quadratic time with the GIL held
    # (CVE-2024-6232): a 96 KiB header of digits would hold the bot for about a minute.
    code = takeover([("slow.txt", {"comment": "1" * 96 * 1024})], {"skipped": []})
    result = await attack.run(code, timeout=10)
    assert result.status in (RunStatus.KILLED, RunStatus.TIMEOUT), result.message
    assert attack.loop_stall < 5.0, f"the event loop stalled for {attack.loop_stall:.1f} s"


async def test_the_code_left_running_after_a_timeout_cannot_take_over_collection(attack):
    code = takeover([("injected.txt", b"FORGED BY THE CODE")], {"oom_kills": 3}).replace(
        "os.kill(runner, signal.SIGKILL)", "pass"
    )
    result = await attack.run(code, timeout=3)
    assert result.status is RunStatus.TIMEOUT, result.message
    assert "injected.txt" not in [f.name for f in result.files]
    assert [f.name for f in result.files] == ["before.txt"]


async def test_files_the_code_made_private_are_still_collected_by_the_warden(attack):
    code = (
        "import os\n"
        "os.umask(0o077)\n"
        "open('private.txt', 'w').write('mine')\n"
        "os.mkdir('closed'); open('closed/inner.txt', 'w').write('inner')\n"
        "os.chmod('closed', 0o000)\n"
        "os.chmod('.', 0o700)\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.OK, result.stderr
    assert sorted(f.name for f in result.files) == ["inner.txt", "private.txt"]


async def test_thousands_of_skipped_entries_come_back_summarized(attack):
    code = "import os\nfor i in range(3000):\n    os.symlink('/etc/passwd', f'link{i}')\n"
    result = await attack.run(code, timeout=15)
    assert result.status is RunStatus.OK, result.stderr
    assert len(result.skipped) <= 21, len(result.skipped)
    summary = result.skipped[-1]
    assert summary.name.startswith("(+") and "more" in summary.name, result.skipped[-3:]
    assert sum(len(s.name) + len(s.reason) for s in result.skipped) < 8000
