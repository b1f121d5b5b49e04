"""The fleet feature's UI: screen.py (mode 1), pane.py (its workspace pane), table.py
(the hosts-and-GPUs table), processes.py (a GPU's processes), detail.py (a GPU's
health), health_view.py (health texts), dialogs.py (host keys, passphrases, free GPUs),
acting.py and acting_dialogs.py (signals and tmux on a process)."""
