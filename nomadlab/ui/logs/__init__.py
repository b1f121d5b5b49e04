"""The logs feature's UI: screen.py (mode 2), pane.py (its workspace pane), dialogs.py
(open any HOST:PATH), view.py (the live log viewer both show)."""
