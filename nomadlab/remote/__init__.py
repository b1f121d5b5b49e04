"""Everything that talks to remote hosts (every asyncssh import is under here)."""

import warnings

# cryptography >= 47 warns about DSA when asyncssh is imported: that would reach
# the user's terminal on every command. nomadlab never offers DSA keys.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")
