"""``nomadlab ...`` run in this process: ``nomadlab.cli.main`` with its output captured.

For commands where a fresh interpreter adds nothing to what a test checks (its exit
status, stdout and stderr): a subprocess costs about half a second of CPU for imports,
which on a 2-core machine running the suite in parallel is most of such a test. The
isolated home (conftest) is in os.environ, as it would be for a subprocess. Tests of the
entry point itself, of signals, terminals and of concurrent processes keep real
subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import threading

from nomadlab.cli import main


def _call(args: tuple[str, ...]) -> int:
    try:
        return main(list(args))
    except SystemExit as exit_:
        if isinstance(exit_.code, str):  # sys.exit("message"): printed, status 1
            print(exit_.code, file=sys.stderr)
            return 1
        return int(exit_.code or 0)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_own_thread(args: tuple[str, ...]) -> int:
    """From an async test: main() runs its own event loop, so in a thread of its own
    (the test's loop waits, as it would for a subprocess)."""
    codes: list[int] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            codes.append(_call(args))
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    if errors:
        raise errors[0]
    assert codes, f"nomadlab {' '.join(args)} did not finish within 120 s"
    return codes[0]


def run_main(*args: str, input: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``env``: variables set for this run only (restored after it)."""
    saved_env = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO(input or "")
    saved_stdin = sys.stdin
    sys.stdin = stdin
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _in_own_thread(args) if _loop_running() else _call(args)
    finally:
        sys.stdin = saved_stdin
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
