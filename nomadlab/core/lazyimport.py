"""Modules imported on first use rather than at start-up.

The TUI paints its first frame before it connects to anything, yet importing
asyncssh (and cryptography under it) costs more CPU than the rest of nomadlab's own
modules together. :func:`defer` puts a stand-in module in ``sys.modules``: every
``import asyncssh`` gets it at no cost, and the first attribute looked up on it that
it does not have runs the real import, after which the stand-in carries the real
module's names (and ``sys.modules`` holds the real module). :func:`load` runs the
import on purpose, at a moment of the caller's choosing (the TUI: just after its
first frame, on the event loop's thread, before any worker thread uses the module).

(``importlib.util.LazyLoader`` would not do: on Python 3.11 an ``import`` statement
of a module already in ``sys.modules`` looks up its ``__spec__``, which loads it.)

Only for modules that nothing uses at import time: a class statement deriving from
one of its classes looks an attribute up at once (``remote/ssh.py`` and
``remote/tail.py`` make such classes on first use).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands for a module until something needs one of its names."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr not in ("__path__", "__file__", "__all__"):
            raise AttributeError(attr)  # dunder probes (copy, pickle, inspect) load nothing
        return getattr(_load(self), attr)


def _load(stand_in: _Deferred) -> types.ModuleType:
    name = stand_in.__name__
    with _LOCK:
        current = sys.modules.get(name)
        if current is not None and current is not stand_in:
            return current  # loaded already (by another path)
        del sys.modules[name]
        try:
            module = importlib.import_module(name)
        except BaseException:
            sys.modules.setdefault(name, stand_in)
            raise
        stand_in.__dict__.update(module.__dict__)
        return module


def defer(name: str) -> bool:
    """Make ``name`` import on first use. False (nothing done) when it is imported
    already or cannot be found."""
    with _LOCK:
        if name in sys.modules:
            return False
        spec = importlib.util.find_spec(name)
        if spec is None:
            return False
        stand_in = _Deferred(name)
        stand_in.__spec__ = spec
        sys.modules[name] = stand_in
        return True


def is_loaded(name: str) -> bool:
    """True when ``name`` is imported for real (never deferred, or deferred and used)."""
    module = sys.modules.get(name)
    return module is not None and not isinstance(module, _Deferred)


def load(name: str) -> None:
    """Finish importing ``name`` now if it was deferred and not used yet."""
    module = sys.modules.get(name)
    if isinstance(module, _Deferred):
        _load(module)
