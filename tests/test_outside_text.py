"""Untrusted text on other paths (issue 9, item 20): JSON output escapes C1 controls
and bidi/zero-width characters; `status` and the TUI's cells and log lines show bidi
overrides and zero-width characters as ``<U+XXXX>`` instead of obeying them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_for
from sshd import SshServer

from nomadlab.core.text import json_text, strip_controls, visible
from nomadlab.ui import logtext, render

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
ZWSP = "\u200b"
CSI8 = "\x9b"  # C1 CSI: some terminals obey it like ESC [
OSC8 = "\x9d"
HOSTILE = f"a{CSI8}31mb{OSC8}0;x{RLO}exe.txt{ZWSP}"
RAW = (CSI8, OSC8, RLO, ZWSP, "\x1b")


def nomadlab(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nomadlab", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))


def test_visible_names_every_invisible_character() -> None:
    assert visible(f"train{RLO}yp.exe") == "train<U+202E>yp.exe"
    assert visible(f"a{ZWSP}b\u2066c\ufeff") == "a<U+200B>b<U+2066>c<U+FEFF>"
    assert visible("x\x1b]0;t\x07\x9b") == "x<U+001B>]0;t<U+0007><U+009B>"
    assert visible("one\ntwo\tthree", keep_lines=True) == "one\ntwo\tthree"
    assert visible("one\ntwo") == "one<U+000A>two"
    assert visible("naïve 日本語 ✓") == "naïve 日本語 ✓"  # ordinary text is untouched


def test_strip_controls_keeps_text_newlines_and_tabs() -> None:
    text = "Title\x1b[31m red\x1b[0m\x1b]52;c;ZXZpbA==\x07 \x9b2J\x90dcs\x9c ok\r\nline 2\tcol"
    assert strip_controls(text) == "Title red  ok\nline 2\tcol"


@pytest.mark.parametrize("value", [HOSTILE, {"k": [HOSTILE, 1, None]}, "plain", "日本語"])
def test_json_text_escapes_and_means_the_same(value: object) -> None:
    out = json_text(value, indent=2)
    assert not any(ch in out for ch in RAW)
    assert json.loads(out) == value


def test_board_list_json_escapes_c1_and_bidi(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nshow_local = false\n')
    assert nomadlab(config, "board", "add", HOSTILE).returncode == 0
    for args in (["board", "list", "--json"], ["board", "export", "--json"]):
        result = nomadlab(config, *args)
        assert result.returncode == 0, result.stderr
        assert not any(ch in result.stdout for ch in RAW), args
        assert "\\u009b" in result.stdout and "\\u202e" in result.stdout
        data = json.loads(result.stdout)
        cards = data if isinstance(data, list) else data["cards"]
        assert cards[0]["title"] == HOSTILE  # the data itself is unchanged


def test_tui_cells_and_log_lines_show_bidi_visibly() -> None:
    cell = render.safe(f"python train{RLO}yp.py{ZWSP}")
    assert cell.plain == "python train<U+202E>yp.py<U+200B>"
    assert render.clean(f"{CSI8}x{RLO}") == "\ufffdx<U+202E>"
    line = logtext.to_text(f"epoch 1 {RLO}ssol{ZWSP} \x1b[31mred\x1b[0m")
    assert line.plain == "epoch 1 <U+202E>ssol<U+200B> red"


@pytest.mark.sshd
def test_status_shows_bidi_in_a_gpu_name_visibly(gpu_server: SshServer, nvml_conf: Path,
                                                 tmp_path: Path) -> None:
    gpu_server.write_known_hosts(gpu_server.base / "known_hosts")
    nvml_conf.write_text(nvml_conf.read_text().replace(
        "name=NVIDIA H100 80GB HBM3", f"name=NVIDIA H100{RLO}3MBH{ZWSP}", 1))
    host = host_for(gpu_server)
    config = tmp_path / "config.toml"
    config.write_text(f"""
data_dir = "{tmp_path / 'data'}"
show_local = false
[[hosts]]
name = "gpu1"
hostname = "{host.hostname}"
port = {host.port}
user = "{host.user}"
identity_file = "{host.identity_file}"
known_hosts = "{host.known_hosts}"
""")
    table = nomadlab(config, "status")
    assert table.returncode == 0, table.stderr
    assert "NVIDIA H100<U+202E>3MBH<U+200B>" in table.stdout
    assert not any(ch in table.stdout for ch in RAW)
    as_json = nomadlab(config, "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert not any(ch in as_json.stdout for ch in RAW)
    names = [g["name"] for h in json.loads(as_json.stdout)["hosts"] for g in h["gpus"]]
    assert f"NVIDIA H100{RLO}3MBH{ZWSP}" in names
