"""Slurm jobs: the model, parsing of Slurm's outputs, pending reasons, job events.

No I/O here: :mod:`nomadlab.remote.slurm` runs the commands on a login node.
"""
