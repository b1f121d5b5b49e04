"""Process details (CPU %, RSS, run time, parents, container) and the stdin commands."""

import json
import os
import subprocess
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .host import ProcessNames, which
from .wire import MAX_COMMAND, Message

# --------------------------------------------------------------------------- process details
# (issue 11: CPU %, RSS, run time, parent chain and container of each GPU process; the
# "proc" and "signal" commands the client sends on stdin)

MAX_CHAIN = 32  # parents walked up from a process (a loop in /proc cannot hold us)
DOCKER_EVERY = 60.0  # seconds between two ``docker ps`` on the host, at most
SIGNALS = {"TERM": 15, "INT": 2, "KILL": 9}
_HEX = "0123456789abcdef"


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def read_stat(pid: int, proc_root: str = "/proc") -> Optional[Tuple[str, int, int, int]]:
    """(comm, ppid, utime+stime ticks, start time ticks) from /proc/PID/stat, or None."""
    try:
        with open(os.path.join(proc_root, str(pid), "stat"), "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    left = data.find(b"(")
    right = data.rfind(b")")
    if left < 0 or right < left:
        return None
    comm = data[left + 1:right].decode("utf-8", "replace")
    fields = data[right + 2:].split()
    try:
        return comm, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _page_size() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4096


def start_time(pid: int, proc_root: str = "/proc") -> Optional[int]:
    """The pid's start time in clock ticks after boot: a reused pid has another one."""
    stat = read_stat(pid, proc_root)
    return None if stat is None else stat[3]


def _boot_time(proc_root: str) -> Optional[float]:
    try:
        with open(os.path.join(proc_root, "stat"), "rb") as f:
            for raw in f:
                if raw.startswith(b"btime "):
                    return float(raw.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _hex_run(text: str, start: int, length: int) -> bool:
    part = text[start:start + length]
    return len(part) == length and all(c in _HEX for c in part)


def container_of(cgroup: str) -> Optional[Dict[str, str]]:
    """The container a process runs in, from the text of /proc/PID/cgroup.

    Kubernetes: ``{"kind": "pod", "id": UID}`` (the pod's uid, from ``kubepods`` paths,
    cgroupfs or systemd style); Docker and other runtimes: ``{"kind": "docker", "id":
    64 hex}``; None outside a container.
    """
    pod: Optional[str] = None
    container: Optional[str] = None
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        for part in path.split("/"):
            if "kubepods" in path and pod is None:
                at = part.rfind("pod")
                if at >= 0:
                    uid = part[at + 3:]
                    if uid.endswith(".slice"):
                        uid = uid[:-6]
                    uid = uid.replace("_", "-")
                    if len(uid) == 36 and uid.count("-") == 4:
                        pod = uid
            name = part
            for suffix in (".scope",):
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            name = name.rsplit("-", 1)[-1]
            if len(name) == 64 and _hex_run(name, 0, 64):
                container = name
    if pod is not None:
        return {"kind": "pod", "id": pod}
    if container is not None:
        return {"kind": "docker", "id": container}
    return None


class DockerNames(object):
    """container id -> name, from ``docker ps`` asked at most once a minute."""

    def __init__(self, command: Optional[str] = None, every: float = DOCKER_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.command = command if command is not None else which("docker")
        self.every = every
        self.clock = clock
        self.names: Dict[str, str] = {}
        self.asked: Optional[float] = None
        self.calls = 0

    def name(self, container_id: str) -> Optional[str]:
        if not self.command:  # no docker CLI on this host
            return None
        now = self.clock()
        if container_id not in self.names and (
                self.asked is None or now - self.asked >= self.every):
            self.asked = now
            self.calls += 1
            try:
                out = subprocess.run(
                    [self.command, "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, timeout=3, check=False).stdout
            except (OSError, subprocess.SubprocessError):
                out = b""
            names: Dict[str, str] = {}
            for raw in out.decode("utf-8", "replace").splitlines():
                parts = raw.split(None, 1)
                if len(parts) == 2:
                    names[parts[0]] = parts[1][:MAX_COMMAND]
            self.names = names
        return self.names.get(container_id)


class ProcessDetails(object):
    """Per pid: CPU % since the last sample, RSS, run time, parents, container.

    One read of /proc/PID/stat per distinct process per sample, through a descriptor
    kept open while the process lives; CPU % (utime + stime), RSS (rss pages) and run
    time (start time) all come from that one line. What does not change while a
    process lives (its container) or changes rarely (its parents) is read and sent
    when the process is first seen and again every ``refresh`` seconds; the client
    keeps it in between.
    """

    def __init__(self, proc_root: str = "/proc", docker: Optional[DockerNames] = None,
                 clock: Callable[[], float] = time.monotonic, refresh: float = 30.0) -> None:
        self.root = proc_root
        self.docker = docker if docker is not None else DockerNames()
        self.clock = clock
        self.refresh = refresh
        self.ticks = float(_clock_ticks())
        self.page_mib = _page_size() / 1048576.0
        self.boot = _boot_time(proc_root)
        # pid -> [fd, start, cpu ticks, when, when parents were sent, born (wall s), key]:
        # the open /proc/PID/stat costs one pread per sample instead of open, read,
        # close; once the process ends the read fails (ESRCH), even if the pid is
        # reused. One list per pid, updated in place: no allocation per sample but
        # the sample's own dict.
        self._state: Dict[int, List[Any]] = {}

    def _open(self, pid: int) -> Optional[List[Any]]:
        try:
            fd = os.open(os.path.join(self.root, str(pid), "stat"), os.O_RDONLY)
        except OSError:
            return None
        state: List[Any] = [fd, None, 0, 0.0, None, None, str(pid)]
        self._state[pid] = state
        return state

    def _close(self, pid: int) -> None:
        state = self._state.pop(pid, None)
        if state is not None:
            try:
                os.close(state[0])
            except OSError:
                pass

    def close(self) -> None:
        for pid in list(self._state):
            self._close(pid)

    def chain(self, ppid: int) -> List[List[Any]]:
        """[[pid, comm], ...] from the parent up to pid 1."""
        out: List[List[Any]] = []
        pid = ppid
        while pid > 0 and len(out) < MAX_CHAIN:
            stat = read_stat(pid, self.root)
            if stat is None:
                break
            out.append([pid, stat[0][:64]])
            pid = stat[1]
        return out

    def _container(self, pid: int) -> Optional[Dict[str, str]]:
        try:
            with open(os.path.join(self.root, str(pid), "cgroup"), "rb") as f:
                text = f.read(65536).decode("utf-8", "replace")
        except OSError:
            return None
        found = container_of(text)
        if found is not None and found["kind"] == "docker":
            name = self.docker.name(found["id"])
            if name is not None:
                found["name"] = name
        return found

    def details(self, pids: Iterable[int], now: Optional[float] = None,
                wall: Optional[float] = None) -> Dict[str, Message]:
        """``{"pid": {...}}`` for each pid alive; each pid is read once however often
        it is listed. ``now``/``wall`` default to the clock and ``time.time()``."""
        if now is None:
            now = self.clock()
        if wall is None:
            wall = time.time()
        out: Dict[str, Message] = {}
        states = self._state
        pread = os.pread
        cpu_scale = 1000.0 / self.ticks  # ticks -> tenths of a percent of a core
        ticks = self.ticks
        rss_scale = self.page_mib * 10.0  # pages -> tenths of a MiB
        boot = self.boot
        refresh = self.refresh
        seen = 0
        for pid in pids:
            state = states.get(pid)
            if state is None:
                state = self._open(pid)
                if state is None:
                    continue
            elif state[3] == now and state[6] in out:
                continue  # listed twice: read once
            try:
                data = pread(state[0], 4096, 0)
            except OSError:
                data = b""
            # after "pid (comm) ": state ppid ... utime(11) stime(12) ... start(19)
            # vsize(20) rss(21); the rest of the line is left unsplit. The start time
            # and the parent are parsed only when needed: the descriptor stays on one
            # process, so its start time cannot change.
            fields = data[data.rfind(b")") + 2:].split(None, 22)
            try:
                cpu_ticks = int(fields[11]) + int(fields[12])
                rss = int(int(fields[21]) * rss_scale + 0.5) / 10.0  # MiB, 1 decimal
                start = state[1]
                if start is None:
                    start = state[1] = int(fields[19])
                    state[5] = None if boot is None else boot + start / ticks
                    cpu = None  # one reading is no rate yet
                elif now > state[3]:
                    cpu = int((cpu_ticks - state[2]) * cpu_scale / (now - state[3])
                              + 0.5) / 10.0
                else:
                    cpu = None
            except (IndexError, ValueError):
                self._close(pid)
                continue
            seen += 1
            state[2] = cpu_ticks
            state[3] = now
            born = state[5]
            if born is None:
                age: Optional[int] = None
            else:
                run = wall - born
                age = int(run + 0.5) if run > 0.0 else 0
            info: Message = {"start": start, "cpu": cpu, "rss": rss, "age": age}
            sent = state[4]
            if sent is None or now - sent >= refresh:
                ppid = int(fields[1])
                info["ppid"] = ppid
                info["chain"] = self.chain(ppid)
                info["ctr"] = self._container(pid)
                state[4] = now
            out[state[6]] = info
        if seen != len(states):  # a process ended (or was not asked for): forget it
            for gone in [p for p, st in states.items() if st[6] not in out]:
                self._close(gone)
        return out


def add_process_details(message: Message, details: ProcessDetails) -> Message:
    """Adds ``"pinfo": {pid: {...}}`` for every process of a sample's GPUs."""
    pids = set()
    for gpu in message.get("gpus", []):
        for proc in gpu.get("procs", []):
            pids.add(int(proc[0]))
    message["pinfo"] = details.details(sorted(pids))
    return message


def _user_of(pid: int, proc_root: str) -> str:
    return ProcessNames(proc_root).lookup([pid])[pid][0]


def handle_command(request: Message, proc_root: str = "/proc") -> Message:
    """One stdin command -> its reply. ``proc``: what a pid is; ``signal``: send one.

    A signal goes only to the process that had the given start time: a pid reused
    since the client saw it is refused, never hit.
    """
    reply: Message = {"type": "reply", "id": request.get("id")}
    cmd = request.get("cmd")
    pid = request.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        reply.update(ok=False, error="bad pid")
        return reply
    start = start_time(pid, proc_root)
    if cmd == "proc":
        if start is None:
            reply.update(ok=False, error="no process %d" % pid)
            return reply
        user, command = ProcessNames(proc_root).lookup([pid])[pid]
        reply.update(ok=True, pid=pid, start=start, user=user, command=command)
        return reply
    if cmd != "signal":
        reply.update(ok=False, error="unknown command")
        return reply
    number = SIGNALS.get(str(request.get("sig")))
    if number is None:
        reply.update(ok=False, error="signal must be one of TERM, INT, KILL")
        return reply
    if start is None:
        reply.update(ok=False, error="no process %d (it has ended)" % pid)
        return reply
    if start != request.get("start"):
        reply.update(ok=False, error="pid %d is now another process (its start time "
                                     "changed): not signalled" % pid)
        return reply
    try:
        os.kill(pid, number)
    except PermissionError:
        reply.update(ok=False, error="not permitted: process %d belongs to user %s"
                     % (pid, _user_of(pid, proc_root)))
        return reply
    except ProcessLookupError:
        reply.update(ok=False, error="no process %d (it has ended)" % pid)
        return reply
    except OSError as exc:
        reply.update(ok=False, error="cannot signal %d: %s" % (pid, exc.strerror or exc))
        return reply
    reply.update(ok=True, pid=pid, sig=request.get("sig"))
    return reply


def command_line(agent: Any, raw: bytes) -> bool:
    """A JSON command line on stdin: answered on stdout. False when it was not one."""
    if not raw.lstrip().startswith(b"{"):
        return False
    try:
        request = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return True
    if isinstance(request, dict):
        try:
            agent.write(handle_command(request))
        except (OSError, ValueError):
            pass
    return True


# --------------------------------------------------------------------------- wire format
