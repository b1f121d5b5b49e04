"""Programs that run ON the hosts, apart from the client code that starts them.

Each is shipped over SSH as source on stdin and run by the bootstrap
(:mod:`nomadlab.remote.bootstrap`) on hosts that have only a Python >= 3.8 and its
standard library: nothing here imports nomadlab, a third-party package, or another
program's modules (tests/test_layering.py checks it by reading the imports; the
agent tests run vermin on every module for 3.8).

- :mod:`nomadlab.hostside.agent`: the GPU sampling agent (NVML or nvidia-smi, /proc);
- :mod:`nomadlab.hostside.tailagent`: the log tail agent (``tail -F`` with resume).

A program is a package with relative imports only: the bootstrap serves its modules
from the shipped bundle under another package name, and the client imports the same
modules in-process (local machine, demo server, tests).
"""
