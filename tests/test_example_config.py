"""config.example.toml documents every key: it must load, and use every section."""

from __future__ import annotations

from pathlib import Path

from nomadlab.core.config import load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert [h.name for h in config.hosts] == ["lambda-h100", "home-4090"]
    assert config.logs and config.alerts and config.notify.webhooks
