import tarfile

from app.ops.image import apt_mirror, build_context, ca_files, source_hash, split_reference


def make_source(root):
    (root / "runtime").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM x\n")
    (root / "runtime" / "r.py").write_text("print(1)\n")
    (root / "extra-ca").mkdir()
    return root


def test_hash_covers_sources_but_not_local_ca_files(tmp_path):
    src = make_source(tmp_path / "img")
    first = source_hash(src)
    (src / "extra-ca" / "corp.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert source_hash(src) == first
    (src / "runtime" / "r.py").write_text("print(2)\n")
    assert source_hash(src) != first
    assert len(first) == 12


def test_context_carries_ca_files_under_extra_ca(tmp_path):
    src = make_source(tmp_path / "img")
    (src / "extra-ca" / "corp.pem").write_text("LOCAL")
    other = tmp_path / "bundle.crt"
    other.write_text("GIVEN")
    with tarfile.open(fileobj=build_context(src, ca_files(src, [other]))) as tar:
        names = tar.getnames()
        contents = {
            n: tar.extractfile(n).read()
            for n in names
            if n.startswith("extra-ca/") and n != "extra-ca"
        }
    assert "Dockerfile" in names and "runtime/r.py" in names
    assert sorted(contents.values()) == [b"GIVEN", b"LOCAL"]


def test_split_reference():
    assert split_reference("codeinterp-sandbox:latest") == ("codeinterp-sandbox", "latest")
    assert split_reference("registry:5000/team/img") == ("registry:5000/team/img", "latest")
    assert split_reference("registry:5000/team/img:v1") == ("registry:5000/team/img", "v1")


def test_mirror_from_deb822_sources(tmp_path):
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert apt_mirror([], str(folder)) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path):
    listing = tmp_path / "sources.list"
    listing.write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert apt_mirror([str(listing)], str(tmp_path / "none")) == "http://one.example/debian"


def test_no_mirror_found(tmp_path):
    assert apt_mirror([str(tmp_path / "missing")], str(tmp_path / "none")) is None


def test_the_images_users_are_the_policys():
    import re

    from app.ops.image import SOURCE_DIR
    from app.sandbox.policy import SandboxPolicy

    dockerfile = (SOURCE_DIR / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+_UID)=(\d+)$", dockerfile, flags=re.M))
    policy = SandboxPolicy(image="x")
    assert args == {
        "KEEPER_UID": str(policy.keeper_uid),
        "INSTALL_UID": str(policy.install_uid),
    }
    after_args = dockerfile.split(f"ARG INSTALL_UID={policy.install_uid}", 1)[1]
    assert not re.search(r"\b1000[1-3]\b", after_args)  # the ARGs are the one place
    # The code's uids are the policy's range alone: the image has no account among them.
    assert policy.keeper_uid not in policy.code_uids
    assert policy.install_uid not in policy.code_uids
    assert "CODE_UID" not in dockerfile
