"""One identity per run: each run's code has a uid of its own, so per-uid kernel quotas
(inotify instances, POSIX message queue bytes, pipe buffer pages) that one run exhausts are not
another run's, and two runs at the same time never share a uid."""

import asyncio
import json

from app.sandbox import RunStatus

HOLD = 12.0
PROBE = 8.0

LIBC = "import ctypes, fcntl, json, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
HOG = (
    "held, errno = [], 0\n"
    "while len(held) < 4096:\n"
    "    try:\n"
    "        held.append(grab())\n"
    "    except OSError as exc:\n"
    "        errno = exc.errno; break\n"
    "start = time.time()\n"
    f"time.sleep({HOLD})\n"
    "print(json.dumps({'held': len(held), 'errno': errno, 'from': start, 'to': time.time()}))\n"
)
VICTIM = (
    "times, failures = [], []\n"
    f"end = time.time() + {PROBE}\n"
    "while time.time() < end:\n"
    "    try:\n"
    "        release(grab())\n"
    "        times.append(time.time())\n"
    "    except OSError as exc:\n"
    "        failures.append(os.strerror(exc.errno))\n"
    "    time.sleep(0.1)\n"
    "print(json.dumps({'times': times, 'failures': failures[:3], 'failed': len(failures)}))\n"
)

INOTIFY = (
    "def grab():\n"
    "    fd = libc.inotify_init()\n"
    "    if fd < 0:\n"
    "        raise OSError(ctypes.get_errno(), 'inotify_init')\n"
    "    return fd\n"
    "release = os.close\n"
)
MQUEUE = (
    "libc.mq_open.restype = ctypes.c_int\n"
    "count = [0]\n"
    "def grab():\n"  # each queue with the default attributes costs about 80 KiB of the quota
    "    count[0] += 1\n"
    "    name = f'/q{os.getpid()}-{count[0]}'.encode()\n"
    "    fd = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None)\n"
    "    if fd < 0:\n"
    "        raise OSError(ctypes.get_errno(), 'mq_open')\n"
    "    return fd, name\n"
    "def release(queue):\n"
    "    libc.mq_close(queue[0]); libc.mq_unlink(queue[1])\n"
)
PIPES = (
    "def grab():\n"
    "    r, w = os.pipe()\n"
    "    try:\n"
    "        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1024 * 1024)\n"
    "    except OSError:\n"
    "        os.close(r); os.close(w); raise\n"
    "    return r, w\n"
    "def release(fds):\n"
    "    for fd in fds: os.close(fd)\n"
)


async def _hog_and_victim(attack, kind: str):
    hog = asyncio.create_task(
        attack.run(LIBC + kind + HOG, timeout=HOLD + 6, user_id="hog", alone=False)
    )
    await asyncio.sleep(1.5)
    victim = await attack.run(
        LIBC + kind + VICTIM, timeout=PROBE + 6, user_id="victim", alone=False
    )
    hogged = await hog
    await attack.check_no_leftovers()
    assert hogged.status is RunStatus.OK and victim.status is RunStatus.OK, (
        hogged.stderr,
        victim.stderr,
    )
    held, probed = json.loads(hogged.stdout), json.loads(victim.stdout)
    assert probed["failed"] == 0, f"another run's quota was exhausted: {probed}, hog {held}"
    if attack.runtime == "runc":
        assert held["errno"] != 0 and held["held"] > 0, held  # the hog did reach its quota
        overlap = [t for t in probed["times"] if held["from"] <= t <= held["to"]]
        assert overlap, (held, probed["times"][:3])  # and the victim ran while it was held


async def test_inotify_instances_of_one_run_are_not_anothers(attack):
    await _hog_and_victim(attack, INOTIFY)


async def test_message_queue_bytes_of_one_run_are_not_anothers(attack):
    await _hog_and_victim(attack, MQUEUE)


async def test_pipe_buffer_pages_of_one_run_are_not_anothers(attack):
    await _hog_and_victim(attack, PIPES)


async def test_runs_at_the_same_time_have_different_uids(attack):
    code = "import os, time\nprint(os.getuid(), os.getgid())\ntime.sleep(2)\n"
    results = await asyncio.gather(
        *(attack.run(code, timeout=10, user_id=f"u{i}", alone=False) for i in range(3))
    )
    await attack.check_no_leftovers()
    uids = [r.stdout.split() for r in results]
    assert all(r.status is RunStatus.OK for r in results), [r.stderr for r in results]
    policy = attack.runner.policy
    assert len({uid for uid, _ in uids}) == 3, uids
    for uid, gid in uids:
        assert int(uid) in policy.code_uids and gid == uid
        assert int(uid) not in (policy.keeper_uid, policy.install_uid)
