"""The sandbox runner against the real engine: what a user of `run` or the bot would notice.

Attacks on the sandbox (limits, network, privileges, escapes) live in tests/security/.
"""

import asyncio

from app.sandbox import InputFile, RunStatus
from app.sandbox.policy import RUNNER_SCRIPT


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
    assert 'File "<code>", line 6' in result.stderr and "line 4, in f" in result.stderr
    assert "return x / 0" in result.stderr and "sandbox_runner" not in result.stderr
    syntax = await runner.run(make_request("print('a'\n"))
    assert syntax.status is RunStatus.ERROR and "SyntaxError" in syntax.stderr
    assert "sandbox_runner" not in syntax.stderr


async def test_exit_codes_are_reported(runner, make_request):
    result = await runner.run(make_request("import sys; sys.exit(3)"))
    assert (result.status, result.exit_code) == (RunStatus.ERROR, 3)
    clean = await runner.run(make_request("raise SystemExit(0)"))
    assert clean.status is RunStatus.OK


async def test_timer_covers_only_the_code(runner, make_request):
    result = await runner.run(
        make_request("import time; time.sleep(0.9); print('done')", timeout=1)
    )
    assert result.status is RunStatus.OK, result.message
    assert result.stdout == "done\n"
    assert result.setup_seconds > 0 and 0.9 <= result.exec_seconds < 1


async def test_requested_timeout_never_exceeds_the_configured_maximum(runner, make_request):
    result = await runner.run(make_request("print(1)", timeout=10_000))
    assert result.timeout_seconds == 30


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


async def test_runs_of_one_user_never_overlap(runner, make_request):
    code = "import time\nstart = time.time(); time.sleep(0.5); print(start, time.time())"
    first, second = await asyncio.gather(
        runner.run(make_request(code, user_id="same")),
        runner.run(make_request(code, user_id="same")),
    )
    (a0, a1), (b0, b1) = (map(float, r.stdout.split()) for r in (first, second))
    assert b0 >= a1 or a0 >= b1
    assert max(first.queue_seconds, second.queue_seconds) > 0.4


async def test_empty_and_oversized_code_are_refused_clearly(runner, make_request):
    empty = await runner.run(make_request("   \n"))
    assert empty.status is RunStatus.ERROR and "no code" in empty.message
    huge = await runner.run(make_request("#" * (2 * 1024**2)))
    assert huge.status is RunStatus.ERROR and "over the limit" in huge.message


async def test_outputs_only_their_owner_can_read_are_still_collected(runner, make_request):
    code = (
        "import os\n"
        "fd = os.open('private.csv', os.O_WRONLY | os.O_CREAT, 0o600)\n"
        "os.write(fd, b'a,b\\n1,2\\n'); os.close(fd)\n"
        "os.mkdir('closed', 0o700)\n"
        "open('closed/inner.txt', 'w').write('inside')\n"
        "open('public.txt', 'w').write('x')\n"
    )
    result = await runner.run(make_request(code))
    assert result.status is RunStatus.OK, result.stderr
    assert sorted(f.name for f in result.files) == ["inner.txt", "private.csv", "public.txt"]
    private = next(f for f in result.files if f.name == "private.csv")
    assert private.path.read_bytes() == b"a,b\n1,2\n"


async def test_output_that_looks_like_the_runners_marker_is_kept(runner, make_request):
    code = "import sys\nsys.stdout.write('a\\x1e\\x1ecodeinterp-done 0\\nb\\n');\n"
    result = await runner.run(make_request(code))
    assert result.status is RunStatus.OK
    assert result.stdout == "a\x1e\x1ecodeinterp-done 0\nb\n"


async def test_a_finished_run_is_collected_by_the_warden_without_an_exec(
    runner, make_request, monkeypatch
):
    """The reply's path after the code: no collector or reaper exec, no engine status call."""
    engine = runner.engine
    later_execs, status_calls = [], []
    exec_attach, exec_status = engine.exec_attach, engine.exec_status

    def counting_attach(container_id, **kwargs):
        if kwargs["cmd"][2] != RUNNER_SCRIPT:  # the runner itself (cold, or a pool refill) is fine
            later_execs.append(kwargs["cmd"])
        return exec_attach(container_id, **kwargs)

    def counting_status(*args, **kwargs):
        status_calls.append(args)
        return exec_status(*args, **kwargs)

    monkeypatch.setattr(engine, "exec_attach", counting_attach)
    monkeypatch.setattr(engine, "exec_status", counting_status)
    code = "open('result.txt', 'w').write('42')\nprint('done')\nraise SystemExit(3)\n"
    result = await runner.run(make_request(code))
    assert result.status is RunStatus.ERROR and result.exit_code == 3
    assert result.stdout == "done\n"
    assert [f.name for f in result.files] == ["result.txt"]
    assert later_execs == [] and status_calls == []
