"""The documented configuration is the real one, and the docs hang together."""

import re
from pathlib import Path

from dotenv import dotenv_values

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def test_env_example_lists_every_setting_and_its_defaults_load():
    documented = dotenv_values(ROOT / ".env.example")
    fields = {name.upper() for name in Settings.model_fields}
    assert set(documented) == fields
    from_example = Settings(_env_file=ROOT / ".env.example")
    defaults = Settings(_env_file=None)
    assert from_example.model_dump() == defaults.model_dump()


def env_example_keys(text: str) -> list[str]:
    """The keys assigned in a .env file, in order, as python-dotenv reads them."""
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        keys.append(line.removeprefix("export ").split("=", 1)[0].strip())
    return keys


def test_env_example_assigns_every_key_exactly_once():
    # A second, empty MONGODB_URI= below a filled-in first one silently unsets it.
    keys = env_example_keys((ROOT / ".env.example").read_text())
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert duplicates == [], f".env.example assigns these more than once: {duplicates}"
    assert len(keys) == len(dotenv_values(ROOT / ".env.example"))


def test_duplicate_keys_are_found():
    assert env_example_keys("A=1\n# B=2\nexport A=\nC=3\n") == ["A", "A", "C"]


def test_configuration_doc_lists_every_setting():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in doc, f"{name.upper()} is missing from docs/configuration.md"


def test_readme_is_a_short_front_door_with_the_quick_start_commands():
    size = len(README.read_bytes())
    assert size < 16 * 1024, f"README.md is {size} bytes: move detail to docs/"
    readme = README.read_text()
    assert "bash scripts/start.sh bot" in readme
    assert "bash scripts/test.sh" in readme  # .ci/run is exactly this command


def _without_code(text: str) -> str:
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: link and code markup dropped, lower case, punctuation
    removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_docs_exist():
    names = {path.name for path in DOCS}
    assert {
        "architecture.md",
        "configuration.md",
        "security.md",
        "performance.md",
        "operations.md",
    } <= names


def test_relative_links_point_to_files_and_headings_that_exist():
    broken = []
    for source in [README, *DOCS]:
        for target in LINK.findall(_without_code(source.read_text())):
            if SCHEME.match(target):
                continue  # http(s), mailto: not checked here (no network in tests)
            file_part, _, anchor = target.partition("#")
            path = (source.parent / file_part).resolve() if file_part else source
            where = f"{source.relative_to(ROOT)} -> {target}"
            if not path.exists():
                broken.append(f"{where}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{where}: no such heading")
    assert not broken, "\n".join(broken)
