"""The test terminal itself: a child that prints and exits is seen to have exited.

A process lets go of its terminal a moment before waitpid can see it gone (under load
that moment is long enough to lose). A wait for "the prompt, or the end" must not
call that moment a hang: that is what failed the README-commands test in CI on
``nomadlab hosts trust`` ("exit status None", then a SIGABRT to a process already
gone, so no stacks). Here the child makes the moment wide on purpose: it closes the
terminal, then exits a little later."""

from __future__ import annotations

import os

from tests.ptyterm import PtyTerm

LET_GO_THEN_EXIT = "echo already trusted; exec >&- 2>&- <&-; sleep 0.3; exit 3"


def test_a_child_that_lets_go_of_the_terminal_before_exiting_is_seen_to_exit() -> None:
    with PtyTerm(["sh", "-c", LET_GO_THEN_EXIT], env=dict(os.environ)) as term:
        term.wait_for(lambda s: "[y/N]" in s or term.poll() is not None,
                      timeout=30, what="the question or the end")
        assert term.wait_exit(10) == 3
        assert "already trusted" in term.output()
