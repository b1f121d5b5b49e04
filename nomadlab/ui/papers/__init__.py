"""The papers feature's UI: screen.py (mode 4; its keys in actions.py), pane.py (its
workspace pane), dialogs.py, review.py (the weekly review), text.py (a paper and the
week as text)."""
