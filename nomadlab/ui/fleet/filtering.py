"""Which hosts the fleet table shows, in which order: the sort key, and the filter
typed after ``/``, tested again only for hosts whose data changed or that a
narrower or wider query can change."""

from __future__ import annotations

from nomadlab.core import fleetview
from nomadlab.ui.services import Services


class HostFilter:
    """The hosts shown, sorted and filtered; mixed into
    :class:`~nomadlab.ui.fleet.table.FleetTable`, which keeps the state below."""

    services: Services
    sort_key: str
    query_text: str
    _match_query: str
    _matches: dict[str, tuple[int, bool]]

    def visible_hosts(self) -> list[str]:
        fleet = self.services.fleet
        tags = {h.name: h.tags for h in self.services.config.hosts}
        names = fleetview.order_hosts(fleet.names(), fleet.statuses, fleet.latest,
                                      fleet.costs, self.sort_key)
        query = self.query_text.strip().lower()
        if not query:
            return names
        before, cache = self._match_query, self._matches
        narrower = bool(before) and before != query and before in query
        wider = bool(before) and before != query and query in before
        if before != query and not (narrower or wider):
            cache = {}
        versions = self.services.bridge.host_versions
        matches: dict[str, tuple[int, bool]] = {}
        shown: list[str] = []
        for name in names:
            version = versions.get(name, 0)
            known = cache.get(name)
            if known is not None and known[0] == version and (
                    before == query or (narrower and not known[1])
                    or (wider and known[1])):
                hit = known[1]
            else:
                hit = fleetview.host_matches(query, name, fleet.latest.get(name),
                                             tags.get(name, ()), fleet.statuses.get(name))
            matches[name] = (version, hit)
            if hit:
                shown.append(name)
        self._match_query, self._matches = query, matches
        return shown
