"""The jobs feature's UI: screen.py (mode 6), pane.py (its workspace pane), dialogs.py
(a job's detail and its GPUs), table.py (the jobs table both show)."""
