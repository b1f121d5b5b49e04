"""A fleet read from Prometheus: the answers to the PromQL of promql.py -> HostSamples.

Pure: no network. :func:`nomadlab.core.promql.queries` says what to ask;
:class:`PromFleet` turns the answers into the same :class:`HostSample` /
:class:`HostStatus` the SSH hosts produce, and remembers which target fed which host
so that a target that went down (``up == 0``) or whose series went stale shows on
the host it used to feed.

What each DCGM exporter counter becomes is in :data:`nomadlab.core.promql.GPU_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from nomadlab.core.model import (
    GpuHealth,
    GpuSample,
    HostSample,
    HostState,
    HostStatus,
    XidEvent,
)
from nomadlab.core.promql import DEFAULT_HOST_LABELS, FAST_FIELDS, GPU_FIELDS, NODE_FIELDS


class Sample(Protocol):
    """One series of an instant vector, as the client returns it."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float | None: ...


def address_host(instance: str) -> str:
    """'node1:9400' -> 'node1'; '[::1]:9400' -> '::1'."""
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    head, sep, tail = instance.rpartition(":")
    return head if sep and tail.isdigit() else instance


@dataclass(slots=True)
class Refresh:
    """What one refresh found: a sample per live host and every host's status."""

    samples: dict[str, HostSample] = field(default_factory=dict)
    statuses: dict[str, HostStatus] = field(default_factory=dict)
    new_hosts: list[str] = field(default_factory=list)  # seen for the first time
    # hosts whose status changed (state, error): only these need publishing; the
    # others' status object is the one already published, its last_sample moved on
    changed: set[str] = field(default_factory=set)
    # a lean refresh met a GPU or a target never seen: do a full one
    unknown_gpus: bool = False


@dataclass(slots=True)
class SlowRefresh:
    """What the identities and slow counters read after a lean refresh changed."""

    # the last refresh's sample of each host where a GPU's identity or slow counters
    # changed, with those GPUs made again (same time): only these need publishing
    samples: dict[str, HostSample] = field(default_factory=dict)
    # a GPU or a target the last full refresh did not know: the next one is full
    unknown_gpus: bool = False


class _UnknownGpu(Exception):
    pass


@dataclass(slots=True)
class _Gpu:
    index: int
    uuid: str
    name: str
    values: dict[str, float | None] = field(default_factory=dict)  # fast counters
    slow: dict[str, float | None] = field(default_factory=dict)  # from full refreshes
    total: float | None = None  # memory, MiB: used + free as the last full refresh read
    # the sample made from ``shown`` (this GPU's values then): a lean refresh that
    # reads the same values gives the same sample, not a new one
    sample: GpuSample | None = None
    shown: dict[str, float | None] | None = None


_MISSING_GPU = _Gpu(-1, "", "")
_FAST_NAMES = frozenset(GPU_FIELDS[name] for name in FAST_FIELDS)


GpuAnswer = Sequence[Sample] | Mapping[str, Sequence[Sample]]


def _as_int(value: float | None) -> int | None:
    return None if value is None else int(value)


class PromFleet:
    """Turns the answers of :func:`queries` into samples and statuses, refresh after refresh."""

    def __init__(self, source: str, host_label: str | None = None) -> None:
        self.source = source
        self.host_label = host_label
        self.instance_host: dict[str, str] = {}  # target -> the host it feeds
        self.statuses: dict[str, HostStatus] = {}
        self.last_sample: dict[str, float] = {}
        # (host, GPU uuid or index) -> (last XID value, the XIDs seen change to)
        self._xids: dict[tuple[str, str], tuple[int, list[XidEvent]]] = {}
        # (host, GPU index) -> the GPU as the last full refresh knew it (identity, and
        # the slow counters a lean refresh does not read)
        self._known: dict[tuple[str, int], _Gpu] = {}
        # the last full refresh met a GPU series without the host label (named by its
        # target): lean refreshes then ask for those too (Queries.lean_any)
        self.hostless = False
        self._targets: set[str] = set()  # every target `up` named at the last full refresh
        self._last_samples: dict[str, HostSample] = {}  # the last refresh's samples

    def host_of(self, labels: Mapping[str, str]) -> str | None:
        names = DEFAULT_HOST_LABELS if self.host_label is None else (self.host_label, "instance")
        for name in names:
            value = labels.get(name)
            if value:
                return value
        return None

    def _gpus(self, answer: GpuAnswer, full: bool, identity: Iterable[Sample] = (),
              slow: Iterable[Sample] = ()) -> dict[str, dict[int, _Gpu]]:
        # The hot loop at scale (up to 10 series per GPU, 80,000 at 1,000 hosts): one
        # dict lookup per series for its GPU, the GPU's labels read once. ``answer``:
        # series that carry their metric's name, or counter name -> its series (and
        # ``slow``, series that carry their metric's name). ``identity``: the GPUs of a
        # full refresh, with what identifies them.
        hosts: dict[str, dict[int, _Gpu]] = {}
        by_key: dict[tuple[str | None, str | None, str | None], _Gpu | None] = {}
        fields = GPU_FIELDS
        fast = _FAST_NAMES
        names = DEFAULT_HOST_LABELS if self.host_label is None else (self.host_label,
                                                                      "instance")
        first, second = names
        groups: list[tuple[str | None, Iterable[Sample]]]
        if isinstance(answer, Mapping):
            groups = [(fields[name], series) for name, series in answer.items()
                      if name in fields]
            groups.append((None, slow))
        else:
            groups = [(None, answer)]
        if full:
            self.hostless = False
            for item in identity:  # each GPU once, with what identifies it
                labels = item.labels
                gpu = self._new_gpu(labels, labels.get(first) or labels.get(second),
                                    labels.get("gpu"), hosts)
                if gpu is not None and not labels.get(first):
                    self.hostless = True
        for group_field, series in groups:
            for item in series:
                labels = item.labels
                field_name = group_field or fields.get(labels.get("__name__", ""))
                if field_name is None:
                    continue
                key = (labels.get(first), labels.get(second), labels.get("gpu"))
                gpu = by_key.get(key, _MISSING_GPU)
                if gpu is _MISSING_GPU:
                    if full:
                        gpu = self._new_gpu(labels, key[0] or key[1], key[2], hosts)
                        if gpu is not None and not key[0]:
                            self.hostless = True
                    else:
                        gpu = self._lean_gpu(key[0] or key[1], key[2], hosts)
                    by_key[key] = gpu
                if gpu is not None:
                    if full and field_name not in fast:
                        gpu.slow[field_name] = item.value
                    else:
                        gpu.values[field_name] = item.value
        return hosts

    def _lean_gpu(self, host: str | None, gpu_label: str | None,
                  hosts: dict[str, dict[int, _Gpu]]) -> _Gpu | None:
        try:
            index = int(gpu_label or "")
        except ValueError:
            return None
        if not host:
            return None
        gpu = self._known.get((host, index))
        if gpu is None:
            raise _UnknownGpu
        gpus = hosts.setdefault(host, {})
        if index not in gpus:
            gpu.values = {}  # this refresh's values only: a counter gone is unknown
            gpus[index] = gpu
        return gpus[index]

    def _new_gpu(self, labels: Mapping[str, str], host: str | None, gpu_label: str | None,
                 hosts: dict[str, dict[int, _Gpu]]) -> _Gpu | None:
        try:
            index = int(gpu_label or "")
        except ValueError:
            return None
        if not host:
            return None
        instance = labels.get("instance")
        if instance:
            self.instance_host[instance] = host
        gpus = hosts.setdefault(host, {})
        gpu = gpus.get(index)
        if gpu is None:
            gpu = gpus[index] = _Gpu(index, labels.get("UUID", ""), labels.get("modelName", ""))
            self._known[(host, index)] = gpu
        return gpu

    def _node(self, series: Iterable[Sample], cpu: Iterable[Sample]
              ) -> dict[str, dict[str, float | None]]:
        # node_exporter carries no Hostname label: join on the address of the target,
        # 'node1:9100' feeds the host whose DCGM target is 'node1:9400'.
        by_address = {address_host(i): h for i, h in self.instance_host.items()}
        out: dict[str, dict[str, float | None]] = {}

        def host_for(labels: Mapping[str, str]) -> str | None:
            if self.host_label is not None and labels.get(self.host_label):
                return labels[self.host_label]
            if labels.get("Hostname"):
                return labels["Hostname"]
            instance = labels.get("instance", "")
            return self.instance_host.get(instance) or by_address.get(address_host(instance))

        for item in series:
            host = host_for(item.labels)
            name = NODE_FIELDS.get(item.labels.get("__name__", ""))
            if host is not None and name is not None:
                out.setdefault(host, {})[name] = item.value
        for item in cpu:
            host = host_for(item.labels)
            if host is not None:
                out.setdefault(host, {})["cpu"] = item.value
        return out

    def update(self, now: float, gpus: GpuAnswer, node: Sequence[Sample] = (),
               cpu: Sequence[Sample] = (), up: Sequence[Sample] = (), *,
               full: bool = True, identity: Sequence[Sample] = (),
               slow: Sequence[Sample] = ()) -> Refresh:
        """One refresh's answers -> a sample per host with series, every host's status.

        ``full``: ``gpus`` answers :attr:`Queries.gpus` (every counter, identity labels),
        or maps each counter of :attr:`Queries.lean_any` to its answer, with ``slow``
        and ``identity`` answering :attr:`Queries.slow` and :attr:`Queries.identity`;
        else it maps each counter of :attr:`Queries.lean` to its answer (or is a list
        of series that carry their metric's name), and a GPU never seen in a full
        refresh, or a target `up` names that the last full refresh did not know, makes
        this return at once with ``unknown_gpus`` set (nothing is changed).
        """
        refresh = Refresh()
        if full:
            self._known = {}
            self._targets = {i for i in (item.labels.get("instance") for item in up) if i}
        else:
            known, feeding = self._targets, self.instance_host
            for item in up:
                instance = item.labels.get("instance")
                if instance and instance not in known and instance not in feeding:
                    refresh.unknown_gpus = True  # a new target, maybe without host label
                    return refresh
        try:
            found = self._gpus(gpus, full, identity, slow)
        except _UnknownGpu:
            refresh.unknown_gpus = True
            return refresh
        node_values = self._node(node, cpu)
        self._last_samples = refresh.samples
        for host, by_index in found.items():
            hs = node_values.get(host, {})
            total = hs.get("memory_total")
            available = hs.get("memory_available")
            sample = HostSample(
                host=host, time=now, received=now,
                cpu_percent=hs.get("cpu"),
                memory_used_mib=(None if total is None or available is None
                                 else (total - available) / 1048576.0),
                memory_total_mib=None if total is None else total / 1048576.0,
                load1=hs.get("load1"),
                gpus=[self._gpu_sample(host, by_index[i], now, full)
                      for i in sorted(by_index)],
                source=self.source, processes_known=False,
            )
            refresh.samples[host] = sample
            if host not in self.statuses:
                refresh.new_hosts.append(host)
            self.last_sample[host] = now
        down: dict[str, str] = {}
        for item in up:
            instance = item.labels.get("instance", "")
            fed = self.instance_host.get(instance)
            if fed is not None and item.value == 0:
                down[fed] = f"target {instance} is down (up == 0)"
        for host in list(found) + [h for h in self.statuses if h not in found]:
            previous = self.statuses.get(host)
            if host in found and host not in down:
                state, error = HostState.LIVE, None
            elif host in down:
                state, error = HostState.DOWN, down[host]
            else:
                state, error = HostState.STALE, "no fresh series from Prometheus"
            if previous is not None and previous.state is state and previous.error == error:
                previous.last_sample = self.last_sample.get(host)
                refresh.statuses[host] = previous
                continue
            since = (previous.since if previous is not None and previous.state is state
                     else now)
            status = HostStatus(host, state, since, error=error,
                                last_sample=self.last_sample.get(host))
            self.statuses[host] = status
            refresh.statuses[host] = status
            refresh.changed.add(host)
        return refresh

    def update_slow(self, identity: Sequence[Sample], slow: Sequence[Sample],
                    used: Sequence[Sample] = ()) -> SlowRefresh:
        """A full refresh's other half, read after a lean refresh was shown.

        ``identity``, ``slow``: the answers of :attr:`Queries.identity` and
        :attr:`Queries.slow`; ``used``: of the ``DCGM_FI_DEV_FB_USED`` lean query, asked
        with them (the memory total is used + free of the same moment). Each known GPU
        takes its UUID, model and slow counters from them, as a full refresh would; a
        GPU no longer in ``identity`` nor in the last refresh is forgotten. A GPU or
        target not known sets ``unknown_gpus`` (the next refresh is a full one) and is
        otherwise left alone. Returns the last refresh's samples again for the hosts
        where something changed; statuses are not touched.
        """
        out = SlowRefresh()
        names = DEFAULT_HOST_LABELS if self.host_label is None else (self.host_label,
                                                                      "instance")
        first, second = names

        def key_of(labels: Mapping[str, str]) -> tuple[str, int] | None:
            host = labels.get(first) or labels.get(second)
            try:
                index = int(labels.get("gpu") or "")
            except ValueError:
                return None
            return (host, index) if host else None

        known = self._known
        changed: set[tuple[str, int]] = set()
        named: set[tuple[str, int]] = set()
        hostless = False
        for item in identity:
            labels = item.labels
            key = key_of(labels)
            if key is None:
                continue
            gpu = known.get(key)
            instance = labels.get("instance")
            if gpu is None or (instance and instance not in self.instance_host
                               and instance not in self._targets):
                out.unknown_gpus = True
                continue
            if instance:
                self.instance_host[instance] = key[0]
            named.add(key)
            hostless = hostless or not labels.get(first)
            uuid, name = labels.get("UUID", ""), labels.get("modelName", "")
            if (gpu.uuid, gpu.name) != (uuid, name):
                gpu.uuid, gpu.name = uuid, name
                changed.add(key)
        slow_values: dict[tuple[str, int], dict[str, float | None]] = {}
        for item in slow:
            labels = item.labels
            field_name = GPU_FIELDS.get(labels.get("__name__", ""))
            key = key_of(labels)
            if field_name is None or field_name in _FAST_NAMES or key is None:
                continue
            if key not in known:
                out.unknown_gpus = True
                continue
            slow_values.setdefault(key, {})[field_name] = item.value
        used_now = {key: item.value for item in used
                    if (key := key_of(item.labels)) is not None}
        shown = {(host, g.index) for host, sample in self._last_samples.items()
                 for g in sample.gpus}
        for key in [k for k in known if k not in named and k not in shown]:
            del known[key]
        for key, gpu in known.items():
            values = slow_values.get(key, {})
            free = values.get("memory_free_mib")
            mem_used = used_now.get(key, gpu.values.get("memory_used_mib"))
            total = (None if free is None else gpu.total if mem_used is None
                     else mem_used + free)
            before = gpu.slow
            # the free memory shows only through the total: it alone changes nothing
            if total != gpu.total or any(values.get(k) != before.get(k)
                                         for k in values.keys() | before.keys()
                                         if k != "memory_free_mib"):
                changed.add(key)
            gpu.slow, gpu.total = values, total
        if not out.unknown_gpus:
            self.hostless = hostless
        by_host: dict[str, set[int]] = {}
        for host, index in changed:
            known[(host, index)].sample = None  # the next refresh makes it again
            by_host.setdefault(host, set()).add(index)
        if by_host:  # a new dict: the last refresh's may still be being published
            self._last_samples = dict(self._last_samples)
        for host, indexes in by_host.items():
            sample = self._last_samples.get(host)
            if sample is None:
                continue
            gpus = []
            for old in sample.gpus:
                gpu = known.get((host, old.index))
                if gpu is None or old.index not in indexes:
                    gpus.append(old)
                    continue
                gpu.sample = self._new_gpu_sample(host, gpu, sample.time, False)
                gpu.shown = gpu.values
                gpus.append(gpu.sample)
            out.samples[host] = self._last_samples[host] = replace(sample, gpus=gpus)
        return out

    def _gpu_sample(self, host: str, gpu: _Gpu, now: float, full: bool) -> GpuSample:
        if not full and gpu.sample is not None and gpu.values == gpu.shown:
            return gpu.sample  # nothing moved: identity and slow counters are unchanged
        gpu.sample = self._new_gpu_sample(host, gpu, now, full)
        gpu.shown = gpu.values
        return gpu.sample

    def _new_gpu_sample(self, host: str, gpu: _Gpu, now: float, full: bool) -> GpuSample:
        v = gpu.values | gpu.slow if gpu.slow else gpu.values
        used = v.get("memory_used_mib")
        if full or "memory_free_mib" in gpu.values:
            free = v.get("memory_free_mib")
            total = gpu.total = None if used is None or free is None else used + free
        else:  # a lean refresh does not read the free memory: the total is the same
            total = gpu.total if used is not None else None
        xid = _as_int(v.get("xid"))
        sm, mem = v.get("sm_clock_mhz"), v.get("memory_clock_mhz")
        throttle = _as_int(v.get("throttle_reasons"))
        return GpuSample(
            index=gpu.index, name=gpu.name, uuid=gpu.uuid,
            utilization=v.get("utilization"),
            memory_used_mib=used,
            memory_total_mib=total,
            temperature_c=v.get("temperature_c"),
            power_w=v.get("power_w"),
            power_limit_w=v.get("power_limit_w"),
            memory_copy_util=v.get("memory_copy_util"),
            health=GpuHealth(
                throttle_mask=throttle,
                sm_mhz=None if sm is None else int(sm),
                mem_mhz=None if mem is None else int(mem),
                xid=self._xid_events(host, gpu, xid, now),
            ),
        )

    def _xid_events(self, host: str, gpu: _Gpu, xid: int | None, now: float
                    ) -> list[XidEvent] | None:
        """DCGM exports the last XID a GPU logged (0: none): each change to a new non-zero
        value is an event, timed when this source first saw it."""
        if xid is None:
            return None
        key = (host, gpu.uuid or str(gpu.index))
        last, events = self._xids.get(key, (0, []))
        if xid and xid != last:
            events = [*events[-15:], XidEvent(xid, now)]
        self._xids[key] = (xid, events)
        return list(events)

    def fail_all(self, now: float, error: str) -> dict[str, HostStatus]:
        """The source itself failed: every host it fed is stale, saying why."""
        out = {}
        for host, previous in self.statuses.items():
            since = previous.since if previous.state is HostState.STALE else now
            status = HostStatus(host, HostState.STALE, since, error=error,
                                last_sample=self.last_sample.get(host))
            self.statuses[host] = status
            out[host] = status
        return out


Points = list[tuple[float, float | None]]


def history_points(series: Iterable[tuple[Mapping[str, str], Points]], wanted: set[str],
                   fleet: PromFleet) -> dict[tuple[str, int], list[tuple[float, float]]]:
    """Range-query answers -> (host, gpu) -> points, for the hosts in ``wanted``."""
    out: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for labels, points in series:
        host = fleet.host_of(labels)
        try:
            index = int(labels.get("gpu", ""))
        except ValueError:
            continue
        if host is None or host not in wanted:
            continue
        out[(host, index)] = [(t, v) for t, v in points if v is not None]
    return out
