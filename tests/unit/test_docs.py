"""The documented configuration is the real one."""

from pathlib import Path

from dotenv import dotenv_values

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_and_its_defaults_load():
    documented = dotenv_values(ROOT / ".env.example")
    fields = {name.upper() for name in Settings.model_fields}
    assert set(documented) == fields
    from_example = Settings(_env_file=ROOT / ".env.example")
    defaults = Settings(_env_file=None)
    assert from_example.model_dump() == defaults.model_dump()


def test_configuration_doc_lists_every_setting():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in doc, f"{name.upper()} is missing from docs/configuration.md"
