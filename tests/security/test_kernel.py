"""The kernel's surface: under runc the project's own seccomp profile is in force (Docker's
default without io_uring), so the syscalls behind most kernelCTF container escapes are refused;
under gVisor the code talks to gVisor's kernel, never the host's."""

from app.sandbox import RunStatus

URING = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "params = ctypes.create_string_buffer(120)\n"
    "for nr, name in ((425, 'io_uring_setup'), (426, 'io_uring_enter'),\n"
    "                 (427, 'io_uring_register')):\n"
    "    args = (4, params) if nr == 425 else (0, 0, 0, 0, 0)\n"
    "    ret = libc.syscall(nr, *args)\n"
    "    print(name, 'ALLOWED' if ret >= 0 else f'refused {ctypes.get_errno()}')\n"
    "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
    "print('seccomp', status.get('Seccomp', '?').strip())\n"
    "print('release', os.uname().release)\n"
)


async def test_io_uring_is_refused(attack):
    result = await attack.run(URING)
    assert result.status is RunStatus.OK, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    if attack.runtime == "runc":
        # EPERM from the profile for all three (io_uring_enter and _register on a bad fd would
        # say EBADF, 9, if they reached the kernel's io_uring code).
        for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
            assert lines[name] == "refused 1", result.stdout
        assert lines["seccomp"] == "2", result.stdout  # a filter is in force
    else:
        # gVisor serves these calls in its own kernel: whatever they do, the host's io_uring is
        # never reached. Its kernel presents itself with its own fixed release.
        assert lines["release"] == "4.4.0", result.stdout


async def test_ordinary_work_is_unaffected_by_the_profile(attack):
    code = (
        "import multiprocessing, subprocess, threading, asyncio, select, mmap, os\n"
        "import numpy, pandas\n"
        "with multiprocessing.Pool(2) as pool:\n"
        "    print(sum(pool.map(abs, range(-5, 5))))\n"
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
        "print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())\n"
        "print(asyncio.run(asyncio.sleep(0, 'loop')))\n"
        "ep = select.epoll(); ep.close()\n"
        "m = mmap.mmap(-1, 4096); m.close()\n"
        "print(int(pandas.Series(numpy.arange(10)).sum()))\n"
    )
    result = await attack.run(code, timeout=20)
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout.split() == ["25", "thread", "child", "loop", "45"]
