"""The one duration format: compact (and its total), clock (and its countdown)."""

from __future__ import annotations

from nomadlab.core.config import parse_duration
from nomadlab.core.durations import clock, compact, config_text, countdown, total

M, H, D = 60, 3600, 86400


def test_compact() -> None:
    assert [compact(s) for s in (0, 59, 60, 899, H, H + 5 * M, D + 2 * H)] == [
        "0s", "59s", "1m", "14m", "1h00m", "1h05m", "1d02h"]
    assert compact(-5) == "0s" and compact(59.9) == "59s"
    assert [compact(s, parts=1) for s in (30, 5 * M, 3 * H + 59 * M, 40 * D)] == [
        "30s", "5m", "3h", "40d"]


def test_total_is_hours_and_minutes() -> None:
    assert [total(s) for s in (0, 59, 45 * M, 3 * H + 20 * M, 52 * H + 10 * M)] == [
        "0m", "0m", "45m", "3h20m", "52h10m"]


def test_clock_is_squeues() -> None:
    assert [clock(s) for s in (5, 25 * M, 2 * H + 41 * M + 7, D + 2 * H + 3 * M + 4)] == [
        "0:05", "25:00", "2:41:07", "1-02:03:04"]
    assert clock(None) == "-" and clock(59.9) == "0:59"


def test_countdown_reaches_zero_only_at_the_end() -> None:
    assert countdown(2 * H + 41 * M + 7) == "2:41:07"
    assert countdown(25 * M) == "25:00"
    assert countdown(0.2) == "0:01"
    assert countdown(0) == "0:00" and countdown(-3) == "0:00"


def test_config_text_reads_back() -> None:
    values = (2 * H, 15 * M, 90, 0.5, 2 * D, 1.5 * H)
    assert [config_text(s) for s in values] == ["2h", "15m", "90s", "0.5s", "2d", "90m"]
    assert [parse_duration(config_text(s)) for s in values] == list(values)
