"""The fleet feature's UI: screen.py (mode 1), pane.py (its workspace pane), table.py
(the hosts-and-GPUs table; what its rows show in cells.py, its columns in columns.py,
its row keys in rows.py, its sort and filter in filtering.py), processes.py (a GPU's
processes), detail.py (a GPU's health; health texts in health_view.py), dialogs.py
(host keys, passphrases, free GPUs), acting.py and acting_dialogs.py (signals and
tmux on a process)."""
