"""The pane kinds of the workspace: what each shows and which full screen it opens.

Each feature with a pane declares it in the registry (nomadlab/features.py); this is
the workspace's view of them, by their ``[workspace] panes`` name.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadlab.features import FEATURES, PanePart


@dataclass(frozen=True, slots=True)
class PaneKind:
    """A kind of workspace pane: its key and title, the screen it opens, how it is built."""
    key: str  # config name: fleet, logs, focus, papers, board, jobs
    title: str
    mode: str  # the full screen it opens (and its number key)
    number: str
    build: PanePart
    # Shows its feature's service: built once the feature services are made
    # (ui/services.py install_features; `nomadlab` makes them after its first frame).
    needs_service: bool = False


PANES: dict[str, PaneKind] = {
    feature.key: PaneKind(feature.key, feature.title, feature.key, feature.mode_key,
                          feature.pane, feature.service is not None)
    for feature in FEATURES if feature.pane is not None
}
