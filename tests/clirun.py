"""``nomadlab ...`` run in this process: ``nomadlab.cli.main`` with its output captured.

For commands where a fresh interpreter adds nothing to what a test checks (its exit
status, stdout and stderr): a subprocess costs about half a second of CPU for imports,
which on a 2-core machine running the suite in parallel is most of such a test. The
isolated home (conftest) is in os.environ, as it would be for a subprocess. Tests of the
entry point itself, of signals, terminals and of concurrent processes keep real
subprocesses.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

from nomadlab.cli import main


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
            try:
                code = main(list(args))
            except SystemExit as exit_:
                if isinstance(exit_.code, str):  # sys.exit("message"): printed, status 1
                    print(exit_.code, file=sys.stderr)
                    code = 1
                else:
                    code = exit_.code or 0
    finally:
        sys.stdin = saved_stdin
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
