"""The sandbox runner against the real engine: what a user of `run` or the bot would notice."""

import asyncio
import hashlib
import time

from app.sandbox import InputFile, RunStatus


async def test_hello_world(runner, make_request):
    result = await runner.run(make_request("print('hello from the sandbox')"))
    assert result.status is RunStatus.OK and result.exit_code == 0
    assert result.stdout == "hello from the sandbox\n"
    assert result.files == ()


async def test_csv_attachment_is_read_with_load_file(runner, make_request, input_dir):
    (input_dir / "f1.csv").write_text("a,b\n1,10\n2,20\n3,30\n")
    files = (InputFile(file_id="f1", name="sales.csv", filename="f1.csv", size=20, type="csv"),)
    code = (
        "df = load_file('f1')\n"
        "print(int(df['b'].sum()), list(df.columns))\n"
        "print(get_file_path('sales.csv'))\n"
        "print(list_files())\n"
    )
    result = await runner.run(make_request(code, input_dir=input_dir, files=files))
    assert result.status is RunStatus.OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "60 ['a', 'b']"
    assert lines[1] == "/mnt/data/f1.csv"
    assert "sales.csv" in result.stdout and "f1" in lines[3]


async def test_unknown_file_names_the_available_ones(runner, make_request, input_dir):
    (input_dir / "f1.json").write_text('[{"x": 1}, {"x": 2}]')
    files = (InputFile(file_id="f1", name="rows.json", filename="f1.json", size=20),)
    code = "print(load_file('rows.json')['x'].tolist())\nload_file('nope.csv')\n"
    result = await runner.run(make_request(code, input_dir=input_dir, files=files))
    assert result.stdout == "[1, 2]\n"
    assert result.status is RunStatus.ERROR
    assert "FileNotFoundError: no file 'nope.csv'; available files: f1 (rows.json)" in result.stderr


async def test_matplotlib_png_in_the_working_directory_is_collected(runner, make_request):
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [4, 1, 9])\n"
        "plt.savefig('chart.png')\n"
        "import os\n"
        "open(os.path.join(os.environ['OUTPUT_DIR'], 'notes.txt'), 'w').write('done')\n"
    )
    result = await runner.run(make_request(code))
    assert result.status is RunStatus.OK, result.stderr
    by_name = {f.name: f for f in result.files}
    assert set(by_name) == {"chart.png", "notes.txt"}
    assert by_name["chart.png"].path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert by_name["chart.png"].size == by_name["chart.png"].path.stat().st_size > 1000
    assert by_name["notes.txt"].path.read_text() == "done"


async def test_errors_point_at_the_users_own_lines(runner, make_request):
    result = await runner.run(make_request("x = 1\n\ndef f():\n    return x / 0\n\nf()\n"))
    assert result.status is RunStatus.ERROR and result.exit_code == 1
    assert 'File "<code>", line 6' in result.stderr and 'line 4, in f' in result.stderr
    assert "return x / 0" in result.stderr and "sandbox_runner" not in result.stderr
    syntax = await runner.run(make_request("print('a'\n"))
    assert syntax.status is RunStatus.ERROR and "SyntaxError" in syntax.stderr
    assert "sandbox_runner" not in syntax.stderr


async def test_exit_codes_are_reported(runner, make_request):
    result = await runner.run(make_request("import sys; sys.exit(3)"))
    assert (result.status, result.exit_code) == (RunStatus.ERROR, 3)
    clean = await runner.run(make_request("raise SystemExit(0)"))
    assert clean.status is RunStatus.OK


async def test_infinite_loop_times_out_within_the_limit(runner, make_request):
    started = time.monotonic()
    result = await runner.run(make_request("print('before', flush=True)\nwhile True: pass", timeout=2))
    elapsed = time.monotonic() - started
    assert result.status is RunStatus.TIMEOUT
    assert result.stdout == "before\n"  # output produced before the limit is kept
    assert 2 <= result.exec_seconds < 3
    assert elapsed < 5
    assert "2 s limit" in result.message


async def test_code_ignoring_sigterm_still_times_out(runner, make_request):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(0.01)"
    result = await runner.run(make_request(code, timeout=1))
    assert result.status is RunStatus.TIMEOUT and result.exec_seconds < 2


async def test_timer_covers_only_the_code(runner, make_request):
    result = await runner.run(make_request("import time; time.sleep(0.9); print('done')", timeout=1))
    assert result.status is RunStatus.OK, result.message
    assert result.stdout == "done\n"
    assert result.setup_seconds > 0 and 0.9 <= result.exec_seconds < 1


async def test_requested_timeout_never_exceeds_the_configured_maximum(runner, make_request):
    result = await runner.run(make_request("print(1)", timeout=10_000))
    assert result.timeout_seconds == 30


async def test_stdout_flood_is_capped(runner, make_request):
    code = "import sys\nchunk = 'y' * 65536\nfor _ in range(4096): sys.stdout.write(chunk)\nprint('end', file=sys.stderr)"
    result = await runner.run(make_request(code))  # 256 MiB of stdout
    assert result.status is RunStatus.OK
    assert result.stdout_truncated and len(result.stdout.encode()) == 64 * 1024
    assert result.stderr == "end\n" and not result.stderr_truncated


async def test_one_endless_line_and_invalid_utf8(runner, make_request):
    code = "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok ' + b'z' * 10**7)"
    result = await runner.run(make_request(code))
    assert result.status is RunStatus.OK and result.stdout_truncated
    assert result.stdout.startswith("\ufffd\ufffd ok zzz")


async def test_network_is_unreachable(runner, make_request):
    code = (
        "import socket\n"
        "for host in [('1.1.1.1', 53), ('169.254.169.254', 80), ('172.17.0.1', 2375)]:\n"
        "    try:\n"
        "        socket.create_connection(host, timeout=2); print('OPEN', host)\n"
        "    except OSError as e:\n"
        "        print('blocked', e.errno)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 443); print('DNS OK')\n"
        "except OSError:\n"
        "    print('no dns')\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
    )
    result = await runner.run(make_request(code))
    assert "OPEN" not in result.stdout and "DNS OK" not in result.stdout
    assert result.stdout.count("blocked") == 3 and "no dns" in result.stdout
    assert result.stdout.splitlines()[-1] == "['lo']"


async def test_input_mount_is_read_only_and_unchanged(runner, make_request, input_dir):
    data = b"id,value\n1,2\n"
    (input_dir / "f1.csv").write_bytes(data)
    before = hashlib.sha256(data).hexdigest()
    code = (
        "import os\n"
        "for attempt in (lambda: open('/mnt/data/f1.csv', 'a').write('x'),\n"
        "                lambda: open('/mnt/data/new.txt', 'w'),\n"
        "                lambda: os.remove('/mnt/data/f1.csv'),\n"
        "                lambda: os.chmod('/mnt/data/f1.csv', 0o777)):\n"
        "    try:\n"
        "        attempt(); print('WROTE')\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
    )
    files = (InputFile(file_id="f1", name="d.csv", filename="f1.csv", size=len(data)),)
    result = await runner.run(make_request(code, input_dir=input_dir, files=files))
    assert "WROTE" not in result.stdout and result.stdout.count("refused") == 4
    assert hashlib.sha256((input_dir / "f1.csv").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in input_dir.iterdir()) == ["f1.csv"]


async def test_root_filesystem_is_read_only_and_privileges_are_gone(runner, make_request):
    code = (
        "import os\n"
        "status = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
        "print(os.getuid(), status['CapEff'].strip(), status['NoNewPrivs'].strip())\n"
        "for path in ('/etc/evil', '/opt/venv/evil', '/usr/bin/evil'):\n"
        "    try:\n"
        "        open(path, 'w'); print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
        "print(os.path.exists('/var/run/docker.sock'), os.path.exists('/run/docker.sock'))\n"
    )
    result = await runner.run(make_request(code))
    lines = result.stdout.splitlines()
    assert lines[0] == "10001 0000000000000000 1"
    assert lines[1:4] == ["refused 30"] * 3
    assert lines[4] == "False False"


async def test_bot_secrets_never_reach_the_code(runner, make_request, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "fake-discord-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-openai-secret")
    code = "import os\nprint(any('fake' in v for v in os.environ.values()), sorted(os.environ))"
    result = await runner.run(make_request(code))
    assert result.stdout.startswith("False ")
    assert "DISCORD_TOKEN" not in result.stdout and "OPENAI_API_KEY" not in result.stdout


async def test_a_child_that_outlives_the_code_cannot_deliver_files(runner, make_request):
    code = (
        "import subprocess\n"
        "subprocess.Popen(['sh', '-c', 'sleep 1; echo late > late.txt'])\n"
        "open('early.txt', 'w').write('ok')\n"
    )
    result = await runner.run(make_request(code, timeout=20))
    assert result.status is RunStatus.OK
    assert [f.name for f in result.files] == ["early.txt"]
    assert result.exec_seconds < 1  # the run does not wait for the straggler


async def test_links_fifos_and_hidden_outputs_are_skipped(runner, make_request):
    code = (
        "import os\n"
        "os.symlink('/etc/passwd', 'passwd')\n"
        "os.mkfifo('pipe')\n"
        "open('.hidden', 'w').write('h')\n"
        "os.makedirs('sub/deeper')\n"
        "open('sub/deeper/n.txt', 'w').write('nested')\n"
        "open('evil\\u202etxt.exe', 'w').write('x')\n"
    )
    result = await runner.run(make_request(code))
    assert sorted(f.name for f in result.files) == ["eviltxt.exe", "n.txt"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert "symbolic link" in reasons["passwd"] and reasons["pipe"] == "not a regular file"


async def test_memory_bomb_is_reported_as_oom(runner, make_request):
    result = await runner.run(make_request("x = bytearray(2 * 1024**3)\nprint('survived')"))
    assert result.status is RunStatus.OOM
    assert "out of memory" in result.message and "survived" not in result.stdout


async def test_killing_everything_from_inside_is_a_clean_result(runner, make_request):
    result = await runner.run(make_request("import os, signal\nos.kill(-1, signal.SIGKILL)"))
    assert result.status is RunStatus.KILLED and "SIGKILL" in result.message


async def test_runs_of_one_user_never_overlap(runner, make_request):
    code = "import time\nstart = time.time(); time.sleep(0.5); print(start, time.time())"
    first, second = await asyncio.gather(
        runner.run(make_request(code, user_id="same")), runner.run(make_request(code, user_id="same"))
    )
    (a0, a1), (b0, b1) = (map(float, r.stdout.split()) for r in (first, second))
    assert b0 >= a1 or a0 >= b1
    assert max(first.queue_seconds, second.queue_seconds) > 0.4


async def test_empty_and_oversized_code_are_refused_clearly(runner, make_request):
    empty = await runner.run(make_request("   \n"))
    assert empty.status is RunStatus.ERROR and "no code" in empty.message
    huge = await runner.run(make_request("#" * (2 * 1024**2)))
    assert huge.status is RunStatus.ERROR and "over the limit" in huge.message
