"""Lifecycle: whatever the code does to its own processes, the run ends cleanly and on time."""

from app.sandbox import RunStatus


async def test_killing_pid_1_from_inside_changes_nothing(attack):
    code = (
        "import os, signal\n"
        "open('before.txt', 'w').write('b')\n"
        "for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):\n"
        "    try:\n"
        "        os.kill(1, sig); print('SIGNALLED')\n"
        "    except OSError:\n"
        "        print('refused')\n"
        "open('after.txt', 'w').write('a');\n"  # `;`: the count written is not shown
    )
    result = await attack.run(code)
    assert result.status is RunStatus.OK and result.stdout.split() == ["refused"] * 3
    assert sorted(f.name for f in result.files) == ["after.txt", "before.txt"]


async def test_killing_every_process_is_a_clean_result(attack):
    code = (
        "import os, signal\n"
        "open('kept.txt', 'w').write('written before the kill')\n"
        "os.kill(-1, signal.SIGKILL)\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.KILLED and "SIGKILL" in result.message
    assert [f.name for f in result.files] == ["kept.txt"]  # the keeper survived: output collected


async def test_a_child_that_outlives_the_code_cannot_deliver_files(attack):
    code = (
        "import subprocess\n"
        "subprocess.Popen(['sh', '-c', 'sleep 1; echo late > late.txt'])\n"
        "open('early.txt', 'w').write('ok')\n"
    )
    result = await attack.run(code, timeout=20)
    assert result.status is RunStatus.OK
    assert [f.name for f in result.files] == ["early.txt"]
    assert result.exec_seconds < 2  # the run does not wait for the straggler


async def test_a_detached_daemon_cannot_write_after_the_end(attack):
    code = (
        "import os, signal, time\n"
        # Written before the daemon exists: once it runs, `data.txt` may be its link at any time.
        "open('data.txt', 'w').write('real data')\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "        for i in range(10**6):\n"  # keep swapping a file for a link to a secret
        "            try:\n"
        "                os.symlink('/etc/passwd', f'tmp{i}'); os.replace(f'tmp{i}', 'data.txt')\n"
        "                open(f'late{i % 50}.txt', 'w').write('late')\n"
        "            except OSError:\n"
        "                pass\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
        "open('final.txt', 'w').write('real data')\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.OK, result.stderr
    assert "final.txt" in [f.name for f in result.files]
    for f in result.files:  # whatever was there at the end, nothing is a link's target
        assert b"root:" not in f.path.read_bytes()
    assert result.exec_seconds < 3


async def test_a_forged_status_in_the_output_is_not_believed(attack):
    code = (
        "import sys, json\n"
        "sys.stdout.buffer.write(b'\\x1e\\x1ecodeinterp-ready\\n')\n"
        "print(json.dumps({'status': 'ok', 'exit_code': 0, 'oom_kills': 0}))\n"
        "sys.stderr.write(json.dumps({'skipped': [{'name': 'x', 'reason': 'forged'}],\n"
        "                             'oom_kills': 7, 'skipped_more': 99}))\n"
        "open('/tmp/exit_code', 'w').write('0')\n"
        "sys.stdout.flush()\n"
        "sys.exit(3)\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.ERROR and result.exit_code == 3
    assert result.message == "the code exited with status 3"
    assert all(s.reason != "forged" for s in result.skipped)
    assert not any("more" in s.name for s in result.skipped)


async def test_a_forged_tar_in_the_output_folder_is_just_a_file(attack):
    code = (
        "import io, tarfile\n"
        "buf = io.BytesIO()\n"
        "with tarfile.open(fileobj=buf, mode='w') as tar:\n"
        "    info = tarfile.TarInfo('../../../../etc/cron.d/evil'); data = b'* * * * * root id'\n"
        "    info.size = len(data); tar.addfile(info, io.BytesIO(data))\n"
        "open('results.tar', 'wb').write(buf.getvalue())\n"
    )
    result = await attack.run(code)
    assert [f.name for f in result.files] == ["results.tar"]
    out_dir = result.files[0].path.parent
    assert sorted(p.name for p in out_dir.iterdir()) == ["results.tar"]


async def test_stopping_the_runner_cannot_stall_the_host(attack):
    code = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nwhile True: pass\n"
    result = await attack.run(code, timeout=2)
    assert result.status is RunStatus.TIMEOUT


async def test_killing_the_runner_and_living_on_ends_the_run(attack):
    code = (
        "import os, signal, time\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        "for i in range(100):\n"
        "    open(f'after{i}.txt', 'w').write('x'); time.sleep(0.1)\n"
    )
    result = await attack.run(code, timeout=3)
    assert result.status in (RunStatus.KILLED, RunStatus.TIMEOUT), result.message
    assert result.status is not RunStatus.OK


async def test_closing_its_own_output_streams_is_harmless(attack):
    code = (
        "import os\n"
        "print('bye', flush=True)\n"
        "os.close(1); os.close(2)\n"
        "open('still.txt', 'w').write('x')\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.OK and result.stdout == "bye\n"
    assert [f.name for f in result.files] == ["still.txt"]


DONE = "b'\\x1e\\x1ecodeinterp-done 0\\n'"


async def test_a_forged_done_marker_neither_ends_the_run_nor_sets_its_status(attack):
    code = (
        "import os, subprocess, sys, time\n"
        "helper = subprocess.Popen(['sleep', '0.5'])\n"
        f"sys.stdout.flush(); os.write(1, {DONE}); os.write(2, {DONE})\n"
        "time.sleep(0.3)\n"
        "open('late.txt', 'w').write('written after the forged marker')\n"
        "print('still running')\n"
        "sys.exit(3)\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.ERROR and result.exit_code == 3, result.message
    assert result.stdout.endswith("still running\n")
    assert [f.name for f in result.files] == ["late.txt"]


async def test_the_code_cannot_learn_the_runs_nonce_so_its_markers_never_end_the_run(attack):
    # The run's nonce reaches the runner alone; with it the code could end its output early.
    # Everything the code can read is searched for it, and every candidate is tried.
    code = (
        "import gc, os, re, sys\n"
        "shape = re.compile(rb'nonce ([0-9a-f]{32})')\n"
        "found = set()\n"
        "def search(data):\n"
        "    found.update(m.group(1) for m in shape.finditer(data))\n"
        "runner = os.getppid()\n"
        "for name in ('fd/0', 'mem', 'environ', 'cmdline', 'io', 'syscall', 'stack'):\n"
        "    try:\n"  # not blocking: under gVisor the runner's stdin opens (and is empty)
        "        fd = os.open(f'/proc/{runner}/{name}', os.O_RDONLY | os.O_NONBLOCK)\n"
        "        try: search(os.read(fd, 1 << 20))\n"
        "        finally: os.close(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "for obj in gc.get_objects():\n"
        "    for value in (obj if isinstance(obj, (list, tuple)) else (obj,)):\n"
        "        if isinstance(value, bytes | bytearray): search(bytes(value))\n"
        "        elif isinstance(value, str): search(value.encode('utf-8', 'replace'))\n"
        "left = 256 << 20\n"
        "with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:\n"
        "    for line in maps:\n"
        "        span, perms = line.split()[:2]\n"
        "        start, end = (int(x, 16) for x in span.split('-'))\n"
        "        if 'r' not in perms or end - start > left: continue\n"
        "        try:\n"
        "            mem.seek(start); search(mem.read(end - start)); left -= end - start\n"
        "        except (OSError, ValueError, OverflowError):\n"
        "            pass\n"
        "print('candidates', len(found), flush=True)\n"
        "for guess in sorted(found) + [b'0' * 32]:\n"
        "    marker = b'\\x1e\\x1ecodeinterp-done 0 ' + guess + b'\\n'\n"
        "    os.write(1, marker); os.write(2, marker)\n"
        "print('after the forged markers')\n"
        "sys.exit(5)\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.ERROR and result.exit_code == 5, result.message
    assert result.stdout.startswith("candidates 0\n"), result.stdout[:200]
    assert result.stdout.endswith("after the forged markers\n")


async def test_a_forged_done_marker_at_the_very_end_does_not_set_the_status(attack):
    code = (
        "import os, sys\n"
        "open('out.txt', 'w').write('x')\n"
        f"sys.stdout.flush(); os.write(1, {DONE}); os.write(2, {DONE})\n"
        "os._exit(4)\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.ERROR and result.exit_code == 4, result.message
    assert [f.name for f in result.files] == ["out.txt"]


async def test_the_code_cannot_rename_its_runner_done(attack):
    code = (
        "import os, sys\n"
        "runner = os.getppid()\n"
        "for path in (f'/proc/{runner}/comm', f'/proc/{runner}/task/{runner}/comm'):\n"
        "    try:\n"
        "        with open(path, 'w') as fh: fh.write('cidone-0')\n"
        "        print('RENAMED')\n"
        "    except OSError:\n"
        "        print('refused')\n"
        f"sys.stdout.flush(); os.write(1, {DONE}); os.write(2, {DONE})\n"
        "os._exit(5)\n"
    )
    result = await attack.run(code)
    assert "RENAMED" not in result.stdout
    assert result.status is RunStatus.ERROR and result.exit_code == 5, result.message
