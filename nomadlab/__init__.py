"""nomadlab: a keyboard-driven terminal workspace for ML work on remote GPUs."""

__version__ = "0.1.0"
