"""Privilege: an unprivileged uid with no capabilities, no way up, nothing of the bot's."""

import os

from app.sandbox import RunStatus, SandboxPolicy

LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


async def test_not_root_no_capabilities_no_new_privileges(attack):
    code = LIBC + (
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()\n"
        "              if ':\\t' in l)\n"
        "caps = [status[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')\n"
        "        if k in status]\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
        "print(sorted(set(caps)))\n"
        "print(libc.prctl(39, 0, 0, 0, 0))\n"  # PR_GET_NO_NEW_PRIVS
    )
    result = await attack.run(code)
    uid = result.stdout.split()[0]
    assert int(uid) in attack.runner.policy.code_uids  # a uid of this run's own
    assert result.stdout.splitlines()[0] in (f"{uid} {uid} {uid} []", f"{uid} {uid} {uid} [{uid}]")
    assert result.stdout.splitlines()[1] in ("['0000000000000000']", "['0']")
    assert result.stdout.splitlines()[2] == "1"


async def test_setuid_setgid_and_setgroups_are_refused(attack):
    code = LIBC + (
        "for name, call in (('setuid', lambda: os.setuid(0)), ('setgid', lambda: os.setgid(0)),\n"
        f"                   ('seteuid', lambda: os.seteuid({SandboxPolicy.keeper_uid})),\n"
        "                   ('setgroups', lambda: os.setgroups([0])),\n"
        "                   ('setresuid', lambda: os.setresuid(0, 0, 0))):\n"
        "    try:\n"
        "        call(); print('BECAME', name)\n"
        "    except OSError:\n"
        "        print('refused')\n"
        "print(os.getuid(), os.geteuid())\n"
    )
    result = await attack.run(code)
    words = result.stdout.split()
    assert words[:5] == ["refused"] * 5 and words[5] == words[6]
    assert int(words[5]) in attack.runner.policy.code_uids


async def test_no_setuid_or_setgid_programs_and_no_su_sudo(attack):
    code = (
        "import os, shutil, stat\n"
        "found, pending = [], ['/']\n"
        "while pending:\n"  # the entries' own types: one lstat per regular file, none for links
        "    try:\n"
        "        entries = os.scandir(pending.pop())\n"
        "    except OSError:\n"
        "        continue\n"
        "    with entries:\n"
        "        for entry in entries:\n"
        "            if entry.is_dir(follow_symlinks=False):\n"
        "                if entry.path not in ('/proc', '/sys', '/dev'):\n"
        "                    pending.append(entry.path)\n"
        "            elif entry.is_file(follow_symlinks=False):\n"
        "                try:\n"
        "                    mode = entry.stat(follow_symlinks=False).st_mode\n"
        "                except OSError:\n"
        "                    continue\n"
        "                if mode & (stat.S_ISUID | stat.S_ISGID):\n"
        "                    found.append(entry.path)\n"
        "print(found)\n"
        "print([t for t in ('su', 'sudo', 'doas', 'pkexec', 'docker', 'dockerd', 'runc', 'ctr')\n"
        "       if shutil.which(t)])\n"
    )
    # An lstat of every regular file: 6 to 8 s under gVisor when idle, 15 to 21 s on a machine
    # losing half its cores to other guests (more with os.walk); the fixture's maximum.
    result = await attack.run(code, timeout=45)
    assert result.stdout.splitlines() == ["[]", "[]"], (result.status, result.stdout)


async def test_mount_is_refused(attack):
    code = LIBC + (
        "attempts = [(b'none', b'/tmp', b'tmpfs', 0), (b'/', b'/', None, 32 | 4096),\n"  # remount
        "            (b'/mnt/data', b'/tmp', None, 4096), (b'proc', b'/tmp', b'proc', 0)]\n"
        "for source, target, fstype, flags in attempts:\n"
        "    print(libc.mount(source, target, fstype, flags, None), end=' ')\n"
    )
    result = await attack.run(code)
    assert result.stdout.split() == ["-1"] * 4


async def test_unshare_is_refused_or_harmless(attack, input_dir):
    (input_dir / "f1.txt").write_text("original")
    code = LIBC + (
        "CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x10000000, 0x40000000\n"
        "ok = libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0\n"
        "print('unshared' if ok else 'refused')\n"
        "if ok:\n"
        "    # with a user namespace of our own, try to become root of the files that matter\n"
        "    for target in (b'/', b'/mnt/data'):\n"
        "        libc.mount(None, target, None, 32 | 4096, None)\n"  # MS_REMOUNT|MS_BIND, rw
        "for path in ('/etc/evil', '/mnt/data/f1.txt'):\n"
        "    try:\n"
        "        open(path, 'w').write('changed'); print('WROTE')\n"
        "    except OSError:\n"
        "        print('refused')\n"
        "print(libc.unshare(CLONE_NEWNET) == 0 and sorted(n for _, n in __import__('socket').if_nameindex()))\n"
    )
    result = await attack.run(code, input_dir=input_dir)
    lines = result.stdout.splitlines()
    if attack.runtime == "runc":
        assert lines[0] == "refused"
    assert lines[1:3] == ["refused", "refused"]
    assert lines[3] in ("False", "['lo']")  # a new network namespace has nothing more
    assert (input_dir / "f1.txt").read_text() == "original"


async def test_ptrace_of_other_processes_is_impossible(attack):
    code = LIBC + (
        "import subprocess\n"
        "PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206\n"
        "pids = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
        "others = [p for p in pids if os.stat(f'/proc/{p}').st_uid != os.getuid()]\n"
        "print('others', len(others) > 0)\n"
        "for pid in others:\n"
        "    print(pid, libc.ptrace(PTRACE_ATTACH, pid, 0, 0), libc.ptrace(PTRACE_SEIZE, pid, 0, 0))\n"
        "    for entry in ('environ', 'mem', 'root/etc/hostname'):\n"
        "        try:\n"
        "            open(f'/proc/{pid}/{entry}', 'rb').read(16); print('READ', pid, entry)\n"
        "        except OSError:\n"
        "            pass\n"
    )
    result = await attack.run(code)
    lines = result.stdout.splitlines()
    assert lines[0] == "others True"
    reads = [line for line in lines if line.startswith("READ")]
    if attack.runtime == "runc":
        assert reads == []
    else:  # gVisor shows other processes' environ (no secrets: see the next tests), nothing more
        assert all(line.endswith(" environ") for line in reads), reads
    attaches = [line for line in lines[1:] if not line.startswith("READ")]
    assert attaches and all(line.split()[1:] == ["-1", "-1"] for line in attaches)


async def test_no_docker_socket_or_engine_anywhere(attack):
    code = (
        "import os, stat\n"
        "sockets = []\n"
        # The directory entries' own types: an lstat only for what is neither a folder, a file
        # nor a link (a stat of every file made the walk take 11 to 23 s under gVisor).
        "def walk(path):\n"
        "    try:\n"
        "        entries = list(os.scandir(path))\n"
        "    except OSError:\n"
        "        return\n"
        "    for entry in entries:\n"
        "        try:\n"
        "            if entry.is_dir(follow_symlinks=False):\n"
        "                if entry.path not in ('/proc', '/sys'):\n"
        "                    walk(entry.path)\n"
        "            elif not (entry.is_file(follow_symlinks=False) or entry.is_symlink()):\n"
        "                if stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):\n"
        "                    sockets.append(entry.path)\n"
        "        except OSError:\n"
        "            pass\n"
        "walk('/')\n"
        "print(sockets)\n"
        "print([p for p in ('/var/run/docker.sock', '/run/docker.sock', '/run/containerd')\n"
        "       if os.path.exists(p)])\n"
        "print('DOCKER_HOST' in os.environ)\n"
    )
    result = await attack.run(code, timeout=20)
    assert result.stdout.splitlines() == ["[]", "[]", "False"], (result.status, result.stdout)


async def test_bot_secrets_never_reach_the_run(attack, monkeypatch):
    secrets = {
        "DISCORD_TOKEN": "fake-discord-token-9f3a",
        "OPENAI_API_KEY": "sk-fake-openai-key-9f3a",
        "MONGODB_URI": "mongodb://admin:fake-pass-9f3a@db/",
        "AWS_SECRET_ACCESS_KEY": "fake-aws-9f3a",
        "DOCKER_HOST": "unix:///var/run/docker.sock",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    code = (
        "import os\n"
        "seen = []\n"
        "for pid in ['self'] + [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        seen.append(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError:\n"
        "        pass\n"
        "blob = b'\\n'.join(seen) + repr(dict(os.environ)).encode()\n"
        "print(b'9f3a' in blob, sorted(os.environ))\n"
    )
    result = await attack.run(code)
    assert result.stdout.startswith("False ["), result.stdout
    assert not any(name in result.stdout for name in secrets)
    assert os.environ["DISCORD_TOKEN"] == secrets["DISCORD_TOKEN"]  # they were really set
    assert result.status is RunStatus.OK
