"""The alerts feature's UI: screen.py, the alert history (mode ``!``)."""
