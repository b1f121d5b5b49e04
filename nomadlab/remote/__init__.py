"""Everything that talks to remote hosts (every asyncssh import is under here).

The DSA deprecation warning asyncssh triggers at import is filtered once, in
``nomadlab/__init__.py``, which every import of this package runs first.
"""
