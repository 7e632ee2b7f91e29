"""Filesystem: only the run's own files, read-only; output collection never trusts the folder."""

import hashlib
import os
import re
import uuid

from app.filenames import MAX_NAME_LENGTH
from app.sandbox import InputFile, RunStatus

WALK = (
    "import os\n"
    "def walk(token):\n"
    "    hits = []\n"
    # everywhere a mount or a writable folder could be; the image's own files are known
    "    for top in ('/mnt', '/tmp', '/home', '/root', '/srv', '/var', '/run', '/etc',\n"
    "                '/opt/sandbox', '/media', '/data', '/dev/shm'):\n"
    "        for root, dirs, files in os.walk(top, onerror=lambda e: None):\n"
    "            for name in files:\n"
    "                path = os.path.join(root, name)\n"
    "                try:\n"
    "                    if os.path.isfile(path) and os.path.getsize(path) < 10**6:\n"
    "                        with open(path, 'rb') as fh:\n"
    "                            if token in fh.read(): hits.append(path)\n"
    "                except OSError:\n"
    "                    pass\n"
    "    return hits\n"
)


async def test_another_users_files_are_unreachable(attack, data_dir, input_dir):
    secret = uuid.uuid4().hex
    other = data_dir / "users" / "victim"
    other.mkdir(parents=True, exist_ok=True)
    (other / "private.csv").write_text(f"password,{secret}\n")
    (input_dir / "mine.csv").write_text("a,b\n1,2\n")
    files = (InputFile(file_id="mine", name="mine.csv", filename="mine.csv", size=8),)
    code = WALK + (
        f"print(walk(b{secret!r}))\n"
        "print(sorted(os.listdir('/mnt/data')))\n"
        "print(os.path.exists('/data'), os.path.exists('/mnt/data/../users'))\n"
        "print(sorted(line.split()[1] for line in open('/proc/mounts')\n"
        "             if line.split()[1].startswith(('/mnt', '/home', '/srv', '/data', '/root'))))\n"
    )
    result = await attack.run(code, timeout=15, input_dir=input_dir, files=files)
    assert result.status is RunStatus.OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["[]", "['mine.csv']", "False False"]
    # Cold: the run's one file is mounted on its own; warm: the container's staging folder and
    # its (empty: no session) session folder. /mnt/state is the run's own tmpfs for its snapshot.
    assert lines[3] in (
        "['/mnt/data/mine.csv', '/mnt/output', '/mnt/state']",
        "['/mnt/data', '/mnt/output', '/mnt/session', '/mnt/state']",
    )


async def test_input_mount_is_read_only_and_hashes_unchanged(attack, input_dir):
    data = b"id,value\n1,2\n"
    (input_dir / "f1.csv").write_bytes(data)
    before = hashlib.sha256(data).hexdigest()
    code = (
        "import os\n"
        "for attempt in (lambda: open('/mnt/data/f1.csv', 'a').write('x'),\n"
        "                lambda: open('/mnt/data/new.txt', 'w'),\n"
        "                lambda: os.remove('/mnt/data/f1.csv'),\n"
        "                lambda: os.rename('/mnt/data/f1.csv', '/mnt/data/g.csv'),\n"
        "                lambda: os.chmod('/mnt/data/f1.csv', 0o777),\n"
        "                lambda: os.utime('/mnt/data/f1.csv', (0, 0)),\n"
        "                lambda: os.truncate('/mnt/data/f1.csv', 0)):\n"
        "    try:\n"
        "        attempt(); print('WROTE')\n"
        "    except OSError as e:\n"
        "        print('refused')\n"
    )
    files = (InputFile(file_id="f1", name="d.csv", filename="f1.csv", size=len(data)),)
    result = await attack.run(code, input_dir=input_dir, files=files)
    assert result.stdout.split() == ["refused"] * 7
    assert hashlib.sha256((input_dir / "f1.csv").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in input_dir.iterdir()) == ["f1.csv"]


async def test_symlinks_in_the_output_are_never_followed(attack, input_dir):
    (input_dir / "f1.txt").write_text("input-secret")
    code = (
        "import os\n"
        "os.symlink('/etc/passwd', 'passwd.txt')\n"
        "os.symlink('/mnt/data/f1.txt', 'input.txt')\n"
        "os.symlink('/proc/self/environ', 'env.txt')\n"
        "os.symlink('.', 'loop')\n"
        "os.mkdir('real'); os.symlink('/etc', 'real/etc')\n"
        "open('ok.txt', 'w').write('ok')\n"
    )
    files = (InputFile(file_id="f1", name="f1.txt", filename="f1.txt", size=12),)
    result = await attack.run(code, input_dir=input_dir, files=files)
    assert [f.name for f in result.files] == ["ok.txt"]
    for out in result.files:
        assert out.path.read_bytes() == b"ok" and not out.path.is_symlink()
    skipped = {s.name: s.reason for s in result.skipped}
    for name in ("passwd.txt", "input.txt", "env.txt", "loop", "real_etc"):
        assert "symbolic link" in skipped[name], skipped


async def test_hard_links_cannot_pull_other_files_into_the_output(attack, input_dir):
    (input_dir / "f1.txt").write_text("input-secret")
    code = (
        "import os\n"
        "for source in ('/etc/passwd', '/mnt/data/f1.txt', '/opt/sandbox/sandbox_runner.py',\n"
        "               '/tmp/'):\n"
        "    try:\n"
        "        os.link(source, os.path.basename(source.rstrip('/')) + '.lnk'); print('LINKED')\n"
        "    except OSError as e:\n"
        "        print('refused')\n"
        "open('mine.txt', 'w').write('mine')\n"
        "os.link('mine.txt', 'mine-again.txt')\n"  # within the folder: harmless, both are mine
    )
    files = (InputFile(file_id="f1", name="f1.txt", filename="f1.txt", size=12),)
    result = await attack.run(code, input_dir=input_dir, files=files)
    assert result.stdout.split() == ["refused"] * 4
    assert sorted(f.name for f in result.files) == ["mine-again.txt", "mine.txt"]
    assert all(f.path.read_text() == "mine" and f.path.stat().st_nlink == 1 for f in result.files)


async def test_fifos_sockets_and_device_nodes_are_never_opened(attack):
    code = (
        "import os, socket, stat\n"
        "os.mkfifo('result.csv')\n"  # a FIFO with an innocent name would block a naive reader
        "s = socket.socket(socket.AF_UNIX); s.bind('sock.txt')\n"
        "for name, kind in (('null', stat.S_IFCHR), ('disk', stat.S_IFBLK)):\n"
        "    try:\n"
        "        os.mknod(name, kind | 0o666, os.makedev(1, 3)); print('MADE')\n"
        "    except OSError:\n"
        "        print('refused')\n"
        "open('real.txt', 'w').write('r');\n"  # `;`: the count written is not shown
    )
    result = await attack.run(code)
    if (
        attack.runtime == "runc"
    ):  # no CAP_MKNOD; gVisor makes its own virtual nodes, never host ones
        assert result.stdout.split() == ["refused", "refused"]
    assert [f.name for f in result.files] == ["real.txt"]
    skipped = {s.name: s.reason for s in result.skipped}
    assert (
        skipped["result.csv"] == "not a regular file"
        and skipped["sock.txt"] == "not a regular file"
    )
    assert result.collect_seconds < 10


async def test_hostile_output_names_come_back_safe(attack):
    names = [
        "\x1b[31mred\x07.txt",
        "@everyone.txt",
        "@here <@&123>.png",
        "a\\b\\..\\c.txt",
        "\u202egnp.exe",
        "x\u200b\u200dy.txt",
        "x..\u2215..\u2215etc.txt",
        "\uff0e\uff0ehidden.txt",
        "line\nbreak.txt",
        "-rf --no-preserve-root.sh",
        "L" * 250 + ".csv",
        "\udcff.bin",
    ]
    code = (
        "import os\n"
        f"for name in {names!r}:\n"
        "    os.close(os.open(os.fsencode(name), os.O_CREAT | os.O_WRONLY))\n"
    )
    result = await attack.run(code)
    assert result.status is RunStatus.OK, result.stderr
    got = [f.name for f in result.files]
    assert len(got) == len(names), (got, result.skipped)
    assert len(set(n.lower() for n in got)) == len(got)
    for name in got:
        assert not re.search(r"[\x00-\x1f\x7f/\\@`\u200b-\u200f\u202a-\u202e\u2066-\u2069]", name)
        assert not name.startswith((".", " "))
        assert 0 < len(name) <= MAX_NAME_LENGTH and name not in (".", "..")
    assert any(name.endswith(".csv") and len(name) == MAX_NAME_LENGTH for name in got)
    for f in result.files:  # written where it was meant to be, nowhere else
        assert f.path.parent == result.files[0].path.parent and f.path.name == f.name
        assert os.path.realpath(f.path) == str(f.path)


async def test_root_filesystem_and_system_paths_are_read_only(attack):
    code = (
        "import os\n"
        "for path in ('/etc/evil', '/opt/venv/evil', '/usr/bin/evil', '/opt/sandbox/evil.py',\n"
        "             '/var/tmp/evil', '/root/evil', '/mnt/evil', '/home/evil',\n"
        "             '/proc/sysrq-trigger', '/sys/kernel/evil'):\n"
        "    try:\n"
        "        open(path, 'w').write('x'); print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print('refused')\n"
        "for path in ('/etc/passwd', '/opt/sandbox/sandbox_collect.py'):\n"
        "    try:\n"
        "        os.chmod(path, 0o777); print('CHMOD', path)\n"
        "    except OSError:\n"
        "        print('refused')\n"
    )
    result = await attack.run(code)
    assert result.stdout.split() == ["refused"] * 12, result.stdout


async def test_planted_modules_cannot_hijack_the_collector(attack):
    # The collector runs after the code, as the same uid, from the output folder's neighbourhood:
    # modules the code plants in the output folder or /tmp must never be imported by it.
    evil = "open('/mnt/output/HIJACKED.txt', 'w').write('pwned')\n"
    code = (
        f"evil = {evil!r}\n"
        "for folder in ('.', '/tmp'):\n"
        "    for module in ('sandbox_runner', 'tarfile', 'json', 'argparse', 'sitecustomize',\n"
        "                   'usercustomize', 'os', 'stat'):\n"
        "        open(f'{folder}/{module}.py', 'w').write(evil)\n"
        "import os\n"
        "os.makedirs('/tmp/.local/lib/python3.11/site-packages', exist_ok=True)\n"
        "open('/tmp/.local/lib/python3.11/site-packages/evil.pth', 'w').write('import sitecustomize')\n"
        "open('report.txt', 'w').write('data')\n"
    )
    result = await attack.run(code)
    planted = [
        "sandbox_runner",
        "tarfile",
        "json",
        "argparse",
        "sitecustomize",
        "usercustomize",
        "os",
        "stat",
    ]
    assert sorted(f.name for f in result.files) == sorted(
        [m + ".py" for m in planted] + ["report.txt"]
    )


async def test_a_run_sees_only_the_files_of_its_manifest(attack, input_dir):
    # The user's folder also holds files the run was not given (expired, or not listed): a cold
    # run mounts only the manifest's files, as a warm one stages only them.
    (input_dir / "mine.csv").write_text("a,b\n1,2\n")
    (input_dir / "expired.csv").write_text("expired-secret\n")
    (input_dir / "unlisted.json").write_text('{"secret": 1}\n')
    files = (InputFile(file_id="mine", name="mine.csv", filename="mine.csv", size=8),)
    code = (
        "import os\n"
        "print(sorted(os.listdir('/mnt/data')))\n"
        "print(open('/mnt/data/mine.csv').read().splitlines()[1])\n"
        "for name in ('expired.csv', 'unlisted.json'):\n"
        "    print(os.path.exists('/mnt/data/' + name))\n"
    )
    result = await attack.run(code, input_dir=input_dir, files=files)
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout.split("\n") == ["['mine.csv']", "1,2", "False", "False", ""]


INODES = (
    "import errno, os, sys\n"
    "def fill(folder, limit):\n"
    "    made = 0\n"
    "    try:\n"
    "        while made < limit:\n"
    "            os.close(os.open(f'{folder}/e{made}', os.O_CREAT | os.O_WRONLY, 0o600))\n"
    "            made += 1\n"
    "    except OSError as exc:\n"
    "        return made, errno.errorcode.get(exc.errno, exc.errno)\n"
    "    return made, 'none'\n"
    "for folder, limit in (('/mnt/output/many', 100_000), ('/tmp/many', 150_000)):\n"
    "    os.makedirs(folder)\n"
    "    made, why = fill(folder, limit)\n"
    "    print(folder, made, why, flush=True)\n"
    "    for name in os.listdir(folder):\n"
    "        os.unlink(f'{folder}/{name}')\n"
)


async def test_empty_files_cannot_exhaust_inodes(attack):
    result = await attack.run(INODES, timeout=20)
    policy = attack.runner.policy
    if attack.runtime == "runc":
        assert result.status is RunStatus.OK, (result.status, result.stderr)
        made = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
        caps = {"/mnt/output/many": policy.output_inodes, "/tmp/many": policy.tmp_inodes}
        for folder, cap in caps.items():
            count, why = made[folder]
            assert why == "ENOSPC" and int(count) < cap, (folder, count, why)
    else:
        # gVisor's tmpfs keeps its inodes in the sandbox kernel's memory, which the memory
        # limit bounds: filling them ends in ENOSPC, the sandbox being stopped, or the timeout.
        bounded = (RunStatus.OK, RunStatus.OOM, RunStatus.KILLED, RunStatus.TIMEOUT)
        assert result.status in bounded, result.message
