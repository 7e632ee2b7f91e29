"""Resource exhaustion: every limit is the kernel's or the engine's, and the host stays healthy."""

import asyncio

from app.sandbox import RunStatus

from .conftest import OUTPUT_SIZE, STREAM_CAP

NORMAL = "import time; time.sleep(0.5); print(sum(range(1000)))"


async def _with_bystander(attack, bomb: str, timeout: float):
    """Run `bomb` and, while it rages, a normal run of another user that must succeed."""
    bomb_run = asyncio.create_task(
        attack.run(bomb, timeout=timeout, user_id="attacker", alone=False)
    )
    await asyncio.sleep(1.0)
    bystander = await attack.run(NORMAL, timeout=15, user_id="bystander", alone=False)
    result = await bomb_run
    await attack.check_no_leftovers()
    return result, bystander


async def test_fork_bomb_is_contained_and_other_runs_complete(attack):
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    result, bystander = await _with_bystander(attack, bomb, timeout=4)
    # Contained either way: the limit ends it, or (gVisor, a warm runner with pandas loaded) the
    # forked copies exhaust the sandbox's memory first and gVisor stops the whole sandbox.
    assert result.status in (RunStatus.TIMEOUT, RunStatus.KILLED, RunStatus.OOM), result.message
    assert bystander.status is RunStatus.OK and bystander.stdout == "499500\n"


async def test_thread_bomb_is_contained_and_other_runs_complete(attack):
    bomb = (
        "import threading, time\n"
        "n = 0\n"
        "while True:\n"
        "    try:\n"
        "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); n += 1\n"
        "    except RuntimeError:\n"
        "        print('thread limit after', n, flush=True); time.sleep(60)\n"
    )
    result, bystander = await _with_bystander(attack, bomb, timeout=4)
    assert result.status in (RunStatus.TIMEOUT, RunStatus.KILLED, RunStatus.OOM), result.message
    assert bystander.status is RunStatus.OK and bystander.stdout == "499500\n"


async def test_memory_bomb_is_reported_as_oom(attack):
    result = await attack.run("x = bytearray(2 * 1024**3)\nprint('survived')", timeout=15)
    assert result.status is RunStatus.OOM, (result.status, result.message)
    assert "out of memory" in result.message and "384 MiB" in result.message
    assert "survived" not in result.stdout


async def test_gradual_memory_growth_is_reported_as_oom(attack):
    code = "chunks = []\nwhile True:\n    chunks.append(b'x' * 8 * 1024**2)\n"
    result = await attack.run(code, timeout=15)
    assert result.status is RunStatus.OOM, (result.status, result.message)


async def test_cpu_spin_past_the_timeout_is_stopped(attack):
    result = await attack.run("print('spinning', flush=True)\nwhile True: pass", timeout=2)
    assert result.status is RunStatus.TIMEOUT and "2 s limit" in result.message
    assert result.stdout == "spinning\n"  # what was printed before the limit is kept
    assert 2 <= result.exec_seconds < 3.5


async def test_spinning_processes_that_ignore_sigterm_are_stopped(attack):
    code = (
        "import os, signal\n"
        "for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        while True: pass\n"
        "while True: pass\n"
    )
    result = await attack.run(code, timeout=2)
    assert result.status is RunStatus.TIMEOUT and result.exec_seconds < 3.5


async def test_gigabytes_to_stdout_are_capped(attack):
    code = (
        "import sys\nchunk = b'y' * 2**20\nfor _ in range(4096): sys.stdout.buffer.write(chunk)\n"
    )
    result = await attack.run(code, timeout=8)  # 4 GiB, or as much as fits in the time limit
    assert result.status in (RunStatus.OK, RunStatus.TIMEOUT, RunStatus.KILLED), result.message
    assert result.stdout_truncated and result.stdout == "y" * STREAM_CAP


async def test_gigabytes_to_stderr_are_capped(attack):
    code = (
        "import sys\nchunk = b'e' * 2**20\nfor _ in range(4096): sys.stderr.buffer.write(chunk)\n"
    )
    result = await attack.run(code, timeout=8)
    assert result.stderr_truncated and result.stderr == "e" * STREAM_CAP
    assert result.stdout == "" and not result.stdout_truncated


async def test_one_endless_line_is_capped(attack):
    code = (
        "import sys\n"
        "for _ in range(200): sys.stdout.buffer.write(b'z' * 2**20)\n"  # 200 MiB, no newline
        "print('tail', file=sys.stderr)\n"
    )
    # The fixture's maximum: 200 MiB through gVisor took 12 s with half the cores stolen.
    result = await attack.run(code, timeout=20)
    assert result.status is RunStatus.OK, result.message
    assert result.stdout_truncated and result.stdout == "z" * STREAM_CAP
    assert result.stderr == "tail\n"


async def test_invalid_utf8_is_replaced_not_fatal(attack):
    code = (
        "import sys\n"
        "first = b'\\xff\\xfe ok \\xc3\\x28 \\xed\\xa0\\x80 end\\n'\n"
        "sys.stdout.buffer.write(first)\n"
        "sys.stderr.buffer.write(b'\\x80' * 10 + b'\\n')\n"
        "sys.stdout.buffer.write(b'a' * (65535 - len(first)) + '\\u20ac'.encode())\n"  # cut in a char
    )
    result = await attack.run(code)
    assert result.status is RunStatus.OK
    first = result.stdout.splitlines()[0]
    assert first.startswith("\ufffd\ufffd ok \ufffd( ") and first.endswith(" end")
    assert result.stderr == "\ufffd" * 10 + "\n"
    assert result.stdout_truncated and result.stdout.endswith("a")  # no half character


async def test_filling_the_output_folder_stops_at_its_size(attack):
    code = (
        "import errno\n"
        "try:\n"
        "    with open('big.bin', 'wb') as fh:\n"
        "        while True: fh.write(b'd' * 2**20)\n"
        "except OSError as e:\n"
        "    print('stopped', errno.errorcode[e.errno])\n"
    )
    result = await attack.run(code, timeout=10)
    assert result.stdout == "stopped ENOSPC\n"
    assert sum(f.size for f in result.files) <= OUTPUT_SIZE


async def test_filling_tmp_and_shm_stops_at_their_sizes(attack):
    code = (
        "import errno\n"
        "for folder in ('/tmp', '/dev/shm'):\n"
        "    try:\n"
        "        with open(folder + '/fill', 'wb') as fh:\n"
        "            while True: fh.write(b't' * 2**20)\n"
        "    except OSError as e:\n"
        "        import os\n"
        "        print(folder, errno.errorcode[e.errno], os.path.getsize(folder + '/fill') // 2**20)\n"
    )
    result = await attack.run(code, timeout=10)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("/tmp ENOSPC ") and int(lines[0].split()[-1]) <= 16
    assert lines[1].startswith("/dev/shm ENOSPC ") and int(lines[1].split()[-1]) <= 64


async def test_sparse_files_are_not_collected_past_the_cap(attack):
    code = (
        "import os\n"
        "with open('huge.bin', 'wb') as fh:\n"
        "    fh.truncate(2**40)\n"  # 1 TiB apparent size, no blocks
        "with open('/tmp/huge', 'wb') as fh:\n"
        "    fh.truncate(2**40)\n"
        "open('small.txt', 'w').write('fine')\n"
        "print(os.stat('huge.bin').st_size)\n"
    )
    result = await attack.run(code)
    assert result.stdout == f"{2**40}\n"
    assert [f.name for f in result.files] == ["small.txt"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert "over the total size limit" in reasons["huge.bin"]


async def test_thousands_of_output_files_are_capped(attack):
    code = (
        "import os\n"
        "for i in range(5000):\n"
        "    open(f'f{i:05d}.txt', 'w').write(str(i))\n"
        "print(len(os.listdir('.')))\n"
    )
    result = await attack.run(code, timeout=15)
    assert result.stdout == "5000\n"
    assert [f.name for f in result.files] == [f"f{i:05d}.txt" for i in range(20)]
    assert result.skipped[-1].name.startswith("(+") and "more" in result.skipped[-1].name
    assert result.collect_seconds < 15


async def test_deeply_nested_output_folders_are_not_walked(attack):
    code = (
        "import os\n"
        "path = '.'\n"
        "for i in range(200):\n"
        "    path = os.path.join(path, 'd')\n"
        "os.makedirs(path)\n"
        "open(os.path.join(path, 'deep.txt'), 'w').write('x')\n"
        "open('d/top.txt', 'w').write('y')\n"
    )
    result = await attack.run(code)
    assert [f.name for f in result.files] == ["top.txt"]
    assert any(s.reason == "folder nested too deep" for s in result.skipped)
