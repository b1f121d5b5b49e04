"""Alerts from log lines, and the cooldown every rule kind shares.

:class:`LineAlerts` holds the compiled rules with a pattern (``log`` and
``process_exit``), the cooldown per (rule, subject), and the ``log`` rules: one search
per rule over each batch of lines, a hit confirmed on its own line, a traceback said
with its exception line, a rule turned off when its pattern takes too long.
:class:`~nomadlab.core.alert_engine.AlertEngine` builds the other kinds on it.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nomadlab.core.alerts import EXCERPT_LIMIT, LINE_LIMIT, PATTERN_TOO_SLOW, Alert, clean_text
from nomadlab.core.clock import Clock
from nomadlab.core.config import AlertRule

if TYPE_CHECKING:
    from nomadlab.core.logs import LogLine
    from nomadlab.core.patterns import Pattern, PatternTimeout


def globs_match(globs: Sequence[str], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


@dataclass(slots=True)
class _LogRule:
    rule: AlertRule
    regex: Pattern


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)\b")


def _explanation(texts: Sequence[str], index: int, look: int = 60) -> str | None:
    """For a 'Traceback' line: the exception line that ends it, when it arrived in the
    same batch ("torch.OutOfMemoryError: CUDA out of memory ..."), which says far
    more on a phone than "Traceback (most recent call last):"."""
    if not texts[index].lstrip().startswith("Traceback"):
        return None
    for text in texts[index + 1:index + 1 + look]:
        if _EXCEPTION_LINE.match(text):
            return text
    return None


TRACEBACK_KEEP = 8  # lines of a traceback's end kept with an alert (the last frames + error)


def traceback_tail(texts: Sequence[str], index: int, look: int = 60,
                   keep: int = TRACEBACK_KEEP) -> list[str]:
    """For a 'Traceback' line at ``index``: the traceback's last lines after it, up to
    and including the exception line ("RuntimeError: CUDA out of memory"), at most
    ``keep`` of them, cleaned. Only what is in ``texts``: when the exception line is not
    there (yet), the last ``keep`` lines that are. Empty for any other line."""
    if not texts[index].lstrip().startswith("Traceback"):
        return []
    after: list[str] = []
    for text in texts[index + 1:index + 1 + look]:
        after.append(text)
        if _EXCEPTION_LINE.match(text):
            break
    return [clean_text(t, EXCERPT_LIMIT) for t in after[-keep:]]


def ends_traceback(lines: Sequence[str]) -> bool:
    """Does the last of these lines end a traceback (the exception line)?"""
    return bool(lines) and _EXCEPTION_LINE.match(lines[-1]) is not None


def _line_starts(texts: Sequence[str]) -> list[int]:
    starts = []
    pos = 0
    for text in texts:
        starts.append(pos)
        pos += len(text) + 1
    return starts


class LineAlerts:
    """Cooldowns and the ``log`` rules. Feed it lines; it answers with alerts."""

    def __init__(self, rules: list[AlertRule], clock: Clock) -> None:
        self.rules = rules
        self.clock = clock
        # The patterns, compiled on first use (the config checked them when it was
        # loaded; the TUI makes this before its first frame, and the regex package
        # costs about 10 ms to import).
        self._compiled: tuple[list[_LogRule], list[_LogRule]] | None = None
        self.disabled: list[str] = []  # rules turned off for a pattern that took too long
        self._log_cache: dict[tuple[str, str], list[_LogRule]] = {}
        self._last_fired: dict[tuple[str, str], float] = {}
        self._fired: set[tuple[str, str]] = set()  # fired in the episode that still holds
        self._log_runs: dict[str, int] = {}  # log -> LogLine.run of its latest lines

    def _compile(self) -> tuple[list[_LogRule], list[_LogRule]]:
        if self._compiled is None:
            from nomadlab.core.patterns import compile_user

            # User patterns run with a time limit (core/patterns.py): one that hits it
            # is turned off, with an alert that names it, rather than freezing the loop.
            self._compiled = (
                [_LogRule(r, compile_user(r.pattern, multiline=True))
                 for r in self.rules if r.when == "log" and r.pattern],
                [_LogRule(r, compile_user(r.pattern))
                 for r in self.rules if r.when == "process_exit" and r.pattern],
            )
        return self._compiled

    @property
    def _log_rules(self) -> list[_LogRule]:
        return self._compile()[0]

    @_log_rules.setter
    def _log_rules(self, rules: list[_LogRule]) -> None:
        self._compiled = (rules, self._compile()[1])

    @property
    def _exit_rules(self) -> list[_LogRule]:
        return self._compile()[1]

    @_exit_rules.setter
    def _exit_rules(self, rules: list[_LogRule]) -> None:
        self._compiled = (self._compile()[0], rules)

    # ------------------------------------------------------------------ cooldown

    def _cooling(self, rule: AlertRule, subject: str, now: float) -> bool:
        last = self._last_fired.get((rule.name, subject))
        return last is not None and now - last < rule.cooldown

    def _may_fire(self, rule: AlertRule, subject: str, now: float, holds: bool) -> bool:
        """For duration rules: the condition ``holds`` long enough; may it be said now?"""
        key = (rule.name, subject)
        if not holds:
            self._fired.discard(key)
            return False
        if self._cooling(rule, subject, now):
            return False
        return not (key in self._fired and rule.cooldown <= 0)

    def _fire(self, rule: AlertRule, subject: str, now: float) -> None:
        self._last_fired[(rule.name, subject)] = now
        self._fired.add((rule.name, subject))

    # ------------------------------------------------------------------ logs

    def _rules_for_log(self, log: str, host: str) -> list[_LogRule]:
        key = (log, host)
        rules = self._log_cache.get(key)
        if rules is None:
            rules = [
                lr for lr in self._log_rules
                if globs_match(lr.rule.logs, log) and globs_match(lr.rule.hosts, host)
            ]
            self._log_cache[key] = rules
        return rules

    def _new_run(self, log: str, run: int) -> None:
        """Lines from another file behind the log's path: a new run, cooldown over."""
        known = self._log_runs.get(log)
        self._log_runs[log] = run
        if known is None or known == run:
            return
        for lr in self._log_rules:
            self._last_fired.pop((lr.rule.name, log), None)
            self._fired.discard((lr.rule.name, log))

    def on_log_lines(self, log: str, host: str, lines: Sequence[LogLine]) -> list[Alert]:
        """New lines of one log. One search per rule over the joined batch; only a
        candidate line is looked at on its own (so a match never spans two lines)."""
        if not lines:
            return []
        if lines[0].run != lines[-1].run:  # a batch that spans two files: one run at a time
            out: list[Alert] = []
            begin = 0
            for i in range(1, len(lines) + 1):
                if i == len(lines) or lines[i].run != lines[begin].run:
                    out.extend(self.on_log_lines(log, host, lines[begin:i]))
                    begin = i
            return out
        self._new_run(log, lines[0].run)
        now = self.clock.time()
        active = [lr for lr in self._rules_for_log(log, host)
                  if not self._cooling(lr.rule, log, now)]
        if not active:
            return []
        texts = [line.text for line in lines]
        joined = "\n".join(texts)
        out = []
        from nomadlab.core.patterns import PatternTimeout

        for lr in active:
            try:
                self._search_rule(lr, log, host, lines, texts=texts, joined=joined,
                                  now=now, out=out)
            except PatternTimeout as exc:
                out.append(self._too_slow(lr, exc, now, log=log, host=host))
        out.sort(key=lambda a: a.extra.get("seq", 0))
        return out

    def _search_rule(self, lr: _LogRule, log: str, host: str, lines: Sequence[LogLine], *,
                     texts: list[str], joined: str, now: float, out: list[Alert]) -> None:
        from nomadlab.core.patterns import search

        starts: list[int] | None = None
        pos = 0
        while pos <= len(joined):
            match = search(lr.regex, joined, pos)
            if match is None:
                break
            if starts is None:
                starts = _line_starts(texts)
            index = bisect.bisect_right(starts, match.start()) - 1
            text = texts[index]
            if search(lr.regex, text) is not None and not self._cooling(lr.rule, log, now):
                alert = self._log_alert(lr.rule, log, host, lines[index], now,
                                        explanation=_explanation(texts, index))
                context = traceback_tail(texts, index)
                if context:
                    alert.extra["context"] = context
                out.append(alert)
                self._fire(lr.rule, log, now)
                if lr.rule.cooldown > 0:
                    break
            pos = starts[index] + len(text) + 1

    def _too_slow(self, lr: _LogRule, exc: PatternTimeout, now: float, *,
                  log: str | None = None, host: str = "") -> Alert:
        """Turn the rule off (until the config is loaded again) and say so."""
        self._log_rules = [r for r in self._log_rules if r is not lr]
        self._exit_rules = [r for r in self._exit_rules if r is not lr]
        self._log_cache.clear()
        self.disabled.append(lr.rule.name)
        what = f"a line of {log}" if log else f"a process command on {host}"
        return Alert(
            time=now, rule=PATTERN_TOO_SLOW, severity="error",
            title=f"rule turned off: {lr.rule.name}",
            message=(f"The pattern of rule \u201c{lr.rule.name}\u201d took over "
                     f"{exc.limit:g}s on {what} and is turned off until nomadlab restarts: "
                     f"{clean_text(lr.rule.pattern or '', EXCERPT_LIMIT)}"),
            host=host or None, log=log,
            extra={"alert_rule": lr.rule.name, "pattern": lr.rule.pattern},
        )

    def _log_alert(self, rule: AlertRule, log: str, host: str, line: LogLine,
                   now: float, *, explanation: str | None = None) -> Alert:
        excerpt = clean_text(explanation or line.text, EXCERPT_LIMIT)
        where = f"{log} on {host}" if host else log
        if rule.outcome == "failed":
            message = f"The run logging to {where} failed: {excerpt}"
        elif rule.outcome == "finished":
            message = f"The run logging to {where} finished: {excerpt}"
        else:
            message = f"{where} matched \u201c{rule.name}\u201d: {excerpt}"
        return Alert(
            time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {log}",
            message=message, host=host or None, log=log, outcome=rule.outcome,
            line=clean_text(line.text, LINE_LIMIT), extra={"seq": line.seq},
        )
