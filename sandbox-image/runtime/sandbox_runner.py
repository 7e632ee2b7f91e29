"""In-container runner: receives one job on stdin, runs the user's code, reports completion by exiting.

Started by `docker exec` as the sandbox user. It may import heavy modules first (--preload), writes
a ready marker to stdout, then blocks on stdin: the host's timer starts when it hands the code over. The job is one
JSON line: {"code": str, "files": [...], "paths": [...]}; "paths" are read-only package folders of the
host's package cache (auto-installed approved packages), added after the image's site-packages.

The code runs in a forked child. When the child ends, this process kills every other process of
the sandbox user (children the code left behind) before exiting, so nothing the code started can
write output after its main program ended, and the exec stream closes promptly. The exit status is
the child's: its exit code, or 128 + signal number when it was killed.

Nothing here is trusted by the host beyond the exit status: a program can forge any output.
"""

from __future__ import annotations

import atexit
import builtins
import errno
import json
import linecache
import os
import shutil
import signal
import sys
import traceback

CODE_FILENAME = "<code>"
# Written once, before any user code exists, so the host knows the runner is ready for the code
# and starts its timer only then. Keep in sync with app/sandbox/runner.py.
READY_MARKER = b"\x1e\x1ecodeinterp-ready\n"
MPL_CACHE_SOURCE = "/opt/sandbox/mplcache"


def main(argv: list[str]) -> int:
    preload = []
    if len(argv) >= 2 and argv[0] == "--preload":
        preload = [name for name in argv[1].split(",") if name]
    _prepare_matplotlib_cache()
    for name in preload:
        __import__(name)
    import sandbox_files  # noqa: F401 - imported before the timer starts; the child reuses it

    os.write(1, READY_MARKER)
    line = sys.stdin.buffer.readline()
    if not line:
        return 0  # the host went away before handing over any code
    job = json.loads(line)

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _run_child(job)  # never returns
    status = _wait(pid)
    reap_other_processes()
    return status


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


def reap_other_processes(max_rounds: int = 1000) -> None:
    """SIGKILL every process this user may signal (all of the code's), except ourselves."""
    for _ in range(max_rounds):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return  # nothing left to signal
        except OSError as exc:
            if exc.errno != errno.EPERM:
                return


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


def _run_child(job: dict) -> None:
    code = 1
    try:
        code = _execute(job)
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
    sys.stdin = open(0, "r", closefd=False)

    output_dir = os.environ.get("OUTPUT_DIR", "/mnt/output")
    os.chdir(output_dir)

    import site

    for path in job.get("paths", []):
        site.addsitedir(path)  # after the image's own packages: those always win

    import sandbox_files

    sandbox_files.configure(job.get("files", []))

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
