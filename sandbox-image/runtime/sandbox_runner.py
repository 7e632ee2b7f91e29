"""In-container runner: receives one job on stdin, runs the user's code, reports completion.

Started by `docker exec` as the sandbox user. It may import heavy modules first (--preload) and
exercise them once (lazy imports, caches), then forks the child that will run the code and writes
a ready marker to stdout. The child blocks on stdin: the host's timer starts when it hands the code
over. The job is one JSON line: {"code": str, "files": [...], "paths": [...]}, optionally with
"approved_packages": {import name: distribution}; "paths" are read-only package folders of the
host's package cache (auto-installed approved packages), added after the image's site-packages.

When the child ends, this process kills every other process of the sandbox user (whatever the code
left behind), so nothing the code started can write output after its main program ended. Then it
names itself done (`cidone-<status>`), writes a done marker with the exit status (the child's exit
code, or 128 + signal number) to stdout and to stderr, waits for the host to close its stdin, and
exits with that status. The marker lets the host collect at once instead
of waiting for this process's exit to travel through the engine; it is only a hint, because the
code can print the same bytes: the host acts on it only after the output warden (another uid)
confirmed that no process of the code is left. This process makes itself non-dumpable, so the
code (same uid) cannot ptrace it or read its memory.

Nothing here is trusted by the host beyond the exit status: a program can forge any output.
"""

from __future__ import annotations

import atexit
import builtins
import ctypes
import errno
import io
import json
import linecache
import os
import select
import shutil
import signal
import sys
import time
import traceback

CODE_FILENAME = "<code>"
# The markers and the done name are app/sandbox/markers.py's, which the host reads
# (tests/unit/test_markers.py fails when the two differ).
# Written once, before any user code exists, so the host knows the runner is ready for the code
# and starts its timer only then.
READY_MARKER = b"\x1e\x1ecodeinterp-ready\n"
# Followed by the exit status and a newline, on stdout and on stderr.
DONE_MARKER = b"\x1e\x1ecodeinterp-done "
# This process's name once the code is over, then "-" and the exit status. The warden reads it
# in /proc (the code cannot rename this process), so a done marker the code forged is not believed.
DONE_NAME = "cidone"
PR_SET_NAME = 15
PR_SET_DUMPABLE = 4
# How long the reaping after the code's end keeps trying (processes in uninterruptible sleep).
REAP_SECONDS = 2.0
# How long the runner waits, after its done markers, for the host to close its stdin.
LINGER_SECONDS = 10.0
MPL_CACHE_SOURCE = "/opt/sandbox/mplcache"


def main(argv: list[str]) -> int:
    preload = []
    if len(argv) >= 2 and argv[0] == "--preload":
        preload = [name for name in argv[1].split(",") if name]
    _prepare_matplotlib_cache()
    for name in preload:
        __import__(name)
    if preload:
        _exercise()
    import sandbox_files  # noqa: F401 - imported before the timer starts; the child reuses it

    sys.stdout.flush()
    sys.stderr.flush()
    # Forked now, before the code exists: the job then reaches the child without a fork on the
    # timed path. The child stays dumpable (the code may inspect itself); this process is not.
    pid = os.fork()
    if pid == 0:
        _run_child()  # never returns
    _prctl(PR_SET_DUMPABLE, 0)
    os.write(1, READY_MARKER)
    status = _wait(pid)
    alone = reap_other_processes()
    _prctl(PR_SET_NAME, f"{DONE_NAME}-{status}".encode())
    done = DONE_MARKER + b"%d\n" % status
    os.write(2, done)
    os.write(1, done)
    if alone:  # else the warden will say busy: exit, so the host collects the one-shot way
        _await_host()
    return status


def _await_host(seconds: float = LINGER_SECONDS) -> None:
    """Stay, named done, until the host closes our stdin (the warden has read the status by
    then), or at most `seconds`: exiting at once would make the warden find no runner and the
    host ask the engine for the exit status, a slower round trip."""
    try:
        select.select([0], [], [], seconds)
    except (OSError, ValueError):
        pass


def _prctl(option: int, value: int | bytes) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _exercise() -> None:
    """Make the first calls users make once, so their lazy imports and caches are warm."""
    try:
        if "pandas" in sys.modules:
            pandas = sys.modules["pandas"]
            frame = pandas.read_csv(io.StringIO("a,b,c\n1,2.5,x\n3,4.5,y\n"))
            str(frame.describe())
            str(frame.head())
        if "matplotlib.pyplot" in sys.modules:
            pyplot = sys.modules["matplotlib.pyplot"]
            figure = pyplot.figure()
            pyplot.plot([1, 2], [3, 4])
            pyplot.title("warm-up")
            figure.savefig(io.BytesIO(), format="png")
            pyplot.close("all")
    except Exception:
        pass


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


def reap_other_processes(deadline_seconds: float = REAP_SECONDS) -> bool:
    """SIGKILL every process this user may signal (all of the code's) until none is left.

    kill(-1) reaches every process of this uid except this one; processes forked meanwhile, or
    still dying, are caught by the next round. False when some outlived `deadline_seconds`.
    """
    me, uid = os.getpid(), os.getuid()
    end = time.monotonic() + deadline_seconds
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return True  # nothing left to signal
        if not processes_of(uid, exclude=me):
            return True
        if time.monotonic() > end:
            return False


def processes_of(uid: int, exclude: int = 0) -> list[tuple[int, int, str]]:
    """(pid, parent pid, name) of the live (non-zombie) processes whose real or effective uid is
    `uid`. A parent of 0 means started by `docker exec` (its parent is outside the container):
    the runner. The code's processes always have a parent inside (the runner, or init)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == exclude:
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as fh:
                fields = dict(
                    line.split(b":", 1) for line in fh.read().splitlines() if b":" in line
                )
            uids = fields[b"Uid"].split()
            state = fields[b"State"].split()[0]
            parent = int(fields[b"PPid"])
            process_name = fields[b"Name"].strip().decode("utf-8", "replace")
        except (OSError, KeyError, IndexError, ValueError):
            continue  # gone meanwhile
        if state in (b"Z", b"X") or str(uid).encode() not in uids[:2]:
            continue
        found.append((int(name), parent, process_name))
    return found


def _prepare_matplotlib_cache() -> None:
    # The root filesystem is read-only; matplotlib wants a writable config dir and would rebuild
    # its font cache on every run without the one built into the image.
    target = os.environ.get("MPLCONFIGDIR")
    if not target or os.path.isdir(target) or not os.path.isdir(MPL_CACHE_SOURCE):
        return
    try:
        shutil.copytree(MPL_CACHE_SOURCE, target)
    except OSError:
        pass


def _run_child() -> None:
    code = 1
    try:
        line = sys.stdin.buffer.readline()
        if not line:
            os._exit(0)  # the host went away before handing over any code
        code = _execute(json.loads(line))
    except BaseException:  # the runner's own failure: say so instead of dying silently
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def _execute(job: dict) -> int:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)

    output_dir = os.environ.get("OUTPUT_DIR", "/mnt/output")
    os.chdir(output_dir)

    import site

    for path in job.get("paths", []):
        site.addsitedir(path)  # after the image's own packages: those always win

    import sandbox_files

    # "approved_packages" (import name -> distribution) lets a missing-library error say that
    # importing the package would install it; absent, the error says "if it is approved".
    sandbox_files.configure(job.get("files", []), job.get("approved_packages"))

    source = job["code"]
    linecache.cache[CODE_FILENAME] = (len(source), None, source.splitlines(True), CODE_FILENAME)
    namespace = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "__file__": CODE_FILENAME,
        "load_file": sandbox_files.load_file,
        "get_file_path": sandbox_files.get_file_path,
        "list_files": sandbox_files.list_files,
        "OUTPUT_DIR": output_dir,
    }
    sys.argv = [CODE_FILENAME]
    try:
        compiled = compile(source, CODE_FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        return 1
    try:
        exec(compiled, namespace)
    except SystemExit as exc:
        return _system_exit_code(exc)
    except BaseException as exc:
        _print_user_traceback(exc)
        return 1
    return 0


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _print_user_traceback(exc: BaseException) -> None:
    # Drop the runner's own frames so line numbers and frames are the user's.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != CODE_FILENAME:
        tb = tb.tb_next
    sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))


if __name__ == "__main__":
    exit_status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter teardown: with numpy, pandas and matplotlib preloaded it takes ~0.2 s, and
    # the host's timer waits for this process to end. Nothing here needs cleaning up.
    os._exit(exit_status)
