"""Old path of the logs feature's view, now ``nomadlab.ui.logs.view``.

Kept only for ``ui/screens/workspace.py`` (the fleet UI, being changed on another
branch): remove once that file imports ``nomadlab.ui.logs.view``.
"""

from nomadlab.ui.logs.view import LogView

__all__ = ["LogView"]
