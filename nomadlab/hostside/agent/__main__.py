"""The agent as a program: exec'd by the bootstrap on a host (``BUNDLE`` set), or run
here with ``python -m nomadlab.hostside.agent [--once] [--interval S] [--no-health]``."""

from .run import main

if __name__ == "__nomadlab_remote__":
    main(bundle=BUNDLE)  # type: ignore[name-defined]  # noqa: F821  (set by the bootstrap)
elif __name__ == "__main__":
    main()
