import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.config import RESERVED_UIDS, Settings
from app.sandbox.install_policy import SECCOMP_FILE
from app.sandbox.policy import (
    ETC_HOSTS,
    RUNSC_PIDS_HEADROOM,
    HostPathError,
    SandboxPolicy,
    write_etc_hosts,
)
from app.wiring import sandbox_policy

UID = 20042


def data_mounts(args: dict) -> list[dict]:
    """The run's own mounts: every one but the /etc/hosts each sandbox gets."""
    return [m for m in args["mounts"] if m["Target"] != "/etc/hosts"]


@pytest.fixture
def policy(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        sandbox_memory="512m",
        sandbox_cpus=1.5,
        sandbox_pids_limit=64,
        sandbox_runtime="runsc",
        sandbox_instance="t1",
    )
    return sandbox_policy(settings)


def test_container_is_hardened_by_default(policy, tmp_path):
    (tmp_path / "in").mkdir()
    args = policy.container_args(run_id="r1", user_id="42", code_uid=UID, input_dir=tmp_path / "in")
    assert args["network_mode"] == "none"
    assert args["cap_drop"] == ["ALL"]
    assert args["security_opt"] == ["no-new-privileges"]  # gVisor: its own kernel, own filter
    assert args["read_only"] is True
    assert args["init"] is True
    assert args["pids_limit"] == 64 + RUNSC_PIDS_HEADROOM  # gVisor's own threads count too
    assert (
        SandboxPolicy(image="x", pids_limit=64).container_args(
            run_id="r", user_id="u", code_uid=UID, input_dir=None
        )["pids_limit"]
        == 64
    )  # runc: exactly the setting
    assert args["mem_limit"] == args["memswap_limit"] == 512 * 1024**2  # no swap
    assert args["nano_cpus"] == 1_500_000_000
    assert args["runtime"] == "runsc"
    assert args["environment"] == {}
    assert args["user"] == f"{policy.keeper_uid}:{policy.keeper_uid}"  # the keeper, not the code
    assert "privileged" not in args and "cap_add" not in args and "devices" not in args
    assert args["log_config"]["Type"] == "none"  # output never piles up in engine logs


def test_the_network_namespace_is_runcs_own_with_a_hosts_file_of_loopback_names(policy, tmp_path):
    args = policy.container_args(run_id="r", user_id="u", code_uid=UID, input_dir=None)
    # No engine network at all (not even "none"'s): runc makes an empty namespace itself.
    assert args["network_disabled"] is True and args["network_mode"] == "none"
    [hosts] = [m for m in args["mounts"] if m["Target"] == "/etc/hosts"]
    assert hosts["ReadOnly"] is True and hosts["Type"] == "bind"
    written = Path(hosts["Source"])
    assert written == (tmp_path / "sandbox-etc" / "hosts").resolve()
    lines = written.read_text().splitlines()
    assert "127.0.0.1\tlocalhost" in lines and f"127.0.1.1\t{args['hostname']}" in lines
    assert written.stat().st_mode & 0o777 == 0o644
    # A file someone changed is written again on the next container; nothing else is left.
    written.write_text("10.0.0.1\tlocalhost\n")
    policy.container_args(run_id="r", user_id="u", code_uid=UID, input_dir=None)
    assert "127.0.0.1\tlocalhost" in written.read_text().splitlines()
    assert sorted(p.name for p in written.parent.iterdir()) == ["hosts"]
    # A policy without the file (not built from settings) mounts none and writes nothing.
    bare = SandboxPolicy(image="x").container_args(
        run_id="r", user_id="u", code_uid=UID, input_dir=None
    )
    assert not [m for m in bare["mounts"] if m["Target"] == "/etc/hosts"]


def test_containers_made_at_once_all_find_a_whole_hosts_file(tmp_path):
    # The pool's first starts run in threads together, each asking for the file before it exists.
    path = tmp_path / "sandbox-etc" / "hosts"
    with ThreadPoolExecutor(8) as threads:
        list(threads.map(lambda _: write_etc_hosts(path), range(32)))
    assert path.read_text() == ETC_HOSTS
    assert [p.name for p in path.parent.iterdir()] == ["hosts"]


def test_runc_containers_get_the_projects_seccomp_profile():
    args = SandboxPolicy(image="x").container_args(
        run_id="r", user_id="u", code_uid=UID, input_dir=None
    )
    [nnp, seccomp] = args["security_opt"]
    assert nnp == "no-new-privileges" and seccomp.startswith("seccomp={")
    profile = json.loads(seccomp.removeprefix("seccomp="))
    assert profile == json.loads(SECCOMP_FILE.read_text())


def test_the_seccomp_profile_refuses_io_uring_namespaces_and_32_bit_entry_points():
    profile = json.loads(SECCOMP_FILE.read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }
    for refused in (
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "unshare",
        "setns",
        "mount",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "userfaultfd",
        "clone3",
        "socket",
        "open_by_handle_at",
        "kexec_load",
        "init_module",
    ):
        assert refused not in allowed, refused
    assert all(not arch["subArchitectures"] for arch in profile["archMap"])
    [vsock] = [rule for rule in profile["syscalls"] if rule["names"] == ["socket"]]
    assert vsock["args"] == [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]


def test_tmpfs_is_bounded_in_bytes_and_inodes_and_not_executable(policy):
    tmpfs = policy.tmpfs(UID)
    for target in ("/tmp", "/mnt/output"):
        assert "size=" in tmpfs[target] and "noexec" in tmpfs[target] and "nosuid" in tmpfs[target]
    assert f"nr_inodes={policy.tmp_inodes}," in tmpfs["/tmp"]
    assert f"nr_inodes={policy.output_inodes}," in tmpfs["/mnt/output"]
    assert f"uid={UID}," in tmpfs["/mnt/output"]


def test_a_folder_without_a_manifest_is_one_read_only_bind(policy, tmp_path):
    (tmp_path / "in").mkdir()
    args = policy.container_args(run_id="r", user_id="u", code_uid=UID, input_dir=tmp_path / "in")
    [mount] = data_mounts(args)
    assert mount["Target"] == "/mnt/data" and mount["ReadOnly"] is True and mount["Type"] == "bind"
    assert mount["Source"] == str((tmp_path / "in").resolve())


def test_a_manifest_mounts_only_its_files(policy, tmp_path):
    folder = tmp_path / "users" / "u1"
    folder.mkdir(parents=True)
    for name in ("f1.csv", "f2.json", "expired.csv"):
        (folder / name).write_text("x")
    (folder / "link.csv").symlink_to(folder / "expired.csv")
    args = policy.container_args(
        run_id="r",
        user_id="u",
        code_uid=UID,
        input_dir=folder,
        input_files=["f2.json", "f1.csv", "gone.csv", "link.csv"],
    )
    assert [(m["Target"], m["ReadOnly"]) for m in data_mounts(args)] == [
        ("/mnt/data/f1.csv", True),
        ("/mnt/data/f2.json", True),
    ]
    with pytest.raises(HostPathError):
        policy.container_args(
            run_id="r", user_id="u", code_uid=UID, input_dir=folder, input_files=["../x"]
        )


def test_each_container_carries_its_code_uid(policy):
    args = policy.container_args(run_id="r", user_id="u", code_uid=UID, input_dir=None)
    assert args["labels"]["io.codeinterp.code_uid"] == str(UID)
    command = args["command"]
    assert command[command.index("--code-uid") + 1] == str(UID)
    assert policy.runner_exec(UID)["user"] == f"{UID}:{UID}"
    assert UID in policy.code_uids and policy.keeper_uid not in policy.code_uids


def test_the_uid_range_setting_is_checked():
    assert Settings(_env_file=None, sandbox_uid_range="30000-30099").code_uids == (30000, 30099)
    for bad in ("10000-10100", "500-2000", "30000-30010", "40000-70000", "abc", "30000"):
        with pytest.raises(ValueError):
            Settings(_env_file=None, sandbox_uid_range=bad)
    policy = SandboxPolicy(image="x")
    assert (policy.keeper_uid, policy.install_uid) == RESERVED_UIDS


def test_labels_mark_run_user_and_instance(policy):
    labels = policy.container_args(run_id="r9", user_id="77", code_uid=UID, input_dir=None)[
        "labels"
    ]
    assert labels["io.codeinterp.managed"] == "true"
    assert labels["io.codeinterp.run_id"] == "r9"
    assert labels["io.codeinterp.user_id"] == "77"
    assert labels["io.codeinterp.instance"] == "t1"
    assert policy.ownership_filter() == {
        "label": ["io.codeinterp.managed=true", "io.codeinterp.instance=t1"]
    }


def test_code_environment_is_an_allow_list(policy, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    env = policy.runner_exec(UID)["environment"]
    assert "DISCORD_TOKEN" not in env and "OPENAI_API_KEY" not in env
    assert not any("secret" in v for v in env.values())
    assert env["OUTPUT_DIR"] == "/mnt/output" and env["HOME"] == "/tmp"


def test_host_path_maps_data_dir_for_a_bot_in_a_container(tmp_path):
    policy = SandboxPolicy(image="x", data_dir=tmp_path, host_data_dir=Path("/srv/codeinterp"))
    assert policy.host_path(tmp_path / "users" / "1") == "/srv/codeinterp/users/1"


def test_paths_outside_data_dir_are_never_mounted(policy, tmp_path):
    with pytest.raises(HostPathError):
        policy.host_path(Path("/etc"))
    with pytest.raises(HostPathError):
        policy.host_path(tmp_path / ".." / "elsewhere")


def test_install_container_has_network_but_no_user_files_or_code(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        sandbox_runtime="runsc",
        sandbox_instance="t1",
        package_proxy="http://proxy.local:3128",
        sandbox_pip_index_url="https://mirror.local/simple",
    )
    policy = sandbox_policy(settings)
    work = tmp_path / "packages" / "img" / ".work" / "w1"
    work.mkdir(parents=True)
    args = policy.install_container_args(
        run_id="r1", user_id="42", work_dir=work, distribution="toolz"
    )
    assert args["network_mode"] == policy.install_network == "codeinterp-install"
    assert policy.install_network_args()["options"] == {
        "com.docker.network.bridge.enable_icc": "false"  # installs never reach each other
    }
    assert "runtime" not in args  # gVisor is registered without network
    assert args["command"][-2:] == ["/work", "toolz"] and "-I" in args["command"]
    [mount] = args["mounts"]  # its own work folder only: no input, no output, no user file
    assert (mount["Target"], mount["Source"], mount["ReadOnly"]) == ("/work", str(work), False)
    assert args["cap_drop"] == ["ALL"] and args["read_only"] is True
    assert args["security_opt"][0] == "no-new-privileges"
    assert args["security_opt"][1].startswith("seccomp={")  # runc, whatever the runs use
    assert args["user"].endswith(f":{policy.install_uid}") and not args["user"].startswith("0:")
    assert args["labels"]["io.codeinterp.role"] == "install"
    assert args["labels"]["io.codeinterp.instance"] == "t1"
    env = args["environment"]
    assert env["PIP_INDEX_URL"] == "https://mirror.local/simple"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://proxy.local:3128"
    assert not any(k.startswith(("DISCORD", "OPENAI", "MONGO")) for k in env)


def test_run_mounts_cached_packages_read_only_and_keeps_no_network(policy, tmp_path):
    entry = tmp_path / "packages" / "img" / "toolz"
    entry.mkdir(parents=True)
    args = policy.container_args(
        run_id="r1", user_id="42", code_uid=UID, input_dir=None, packages={"toolz": entry}
    )
    [mount] = data_mounts(args)
    assert (mount["Target"], mount["Source"], mount["ReadOnly"]) == (
        "/opt/packages/toolz",
        str(entry),
        True,
    )
    assert args["network_mode"] == "none"
    assert policy.package_paths({"toolz": entry}) == ["/opt/packages/toolz/site"]


def test_package_cache_outside_data_dir_is_refused(policy, tmp_path):
    with pytest.raises(HostPathError):
        policy.package_mounts({"toolz": Path("/elsewhere/toolz")})


def test_a_warm_container_mounts_the_whole_package_folder_read_only(policy, tmp_path):
    root = tmp_path / "packages" / "img"
    root.mkdir(parents=True)
    args = policy.container_args(
        run_id="w1", user_id="", code_uid=UID, input_dir=None, pool_id="p1", package_root=root
    )
    [mount] = data_mounts(args)
    assert (mount["Target"], mount["Source"], mount["ReadOnly"]) == (
        "/opt/packages",
        str(root),
        True,
    )
    # The same import paths as a cold run's one mount per entry.
    assert policy.package_paths({"toolz": root / "toolz"}) == ["/opt/packages/toolz/site"]
    with pytest.raises(HostPathError):
        policy.container_args(
            run_id="w2", user_id="", code_uid=UID, input_dir=None, package_root=Path("/etc")
        )


def test_warm_preloads_come_from_the_settings(tmp_path):
    settings = Settings(
        _env_file=None, data_dir=tmp_path, sandbox_warm_preload="numpy", sandbox_warm_defer=""
    )
    policy = sandbox_policy(settings)
    assert (policy.warm_preload, policy.warm_defer) == (("numpy",), ())
    assert policy.runner_exec(UID, ("numpy",), ("matplotlib",))["cmd"][-4:] == [
        "--preload",
        "numpy",
        "--defer",
        "matplotlib",
    ]
    with pytest.raises(ValueError):
        Settings(_env_file=None, data_dir=tmp_path, sandbox_warm_defer="os; rm -rf")
