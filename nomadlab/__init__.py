"""nomadlab: a keyboard-driven terminal workspace for ML work on remote GPUs."""

__version__ = "0.1.0"

import warnings as _warnings

# cryptography >= 47 warns, at import, about the DSA names asyncssh still refers to:
# ten lines of noise on stderr before every command's own output. nomadlab never
# offers DSA keys; keep the warning out of the user's terminal.
_warnings.filterwarnings("ignore", message=r"DSA is deprecated")
