"""The focus feature's UI: screen.py (mode 5), pane.py (its workspace pane), dialogs.py
(the form), today.py and week.py (the day's timeline and the week's chart), text.py (the
text pieces they share)."""
