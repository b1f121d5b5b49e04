"""The agent's main loop: hello, one sample per interval, commands and heartbeats."""

import os
import socket
import sys
import threading
import time
from typing import IO, List, NoReturn, Optional

from .gpus import GpuBackend, NoGpu, open_gpus
from .host import HostStats
from .procs import ProcessDetails, add_process_details, command_line
from .wire import AGENT_VERSION, Message, encode

# --------------------------------------------------------------------------- wire format


def hello_message(gpus: GpuBackend, hostname: Optional[str] = None) -> Message:
    return {
        "type": "hello",
        "agent": AGENT_VERSION,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "hostname": hostname if hostname is not None else socket.gethostname(),
        "source": gpus.kind,
        "driver": gpus.driver,
        "gpus": gpus.inventory(),
        "reason": gpus.reason,
    }


def sample_message(gpus: GpuBackend, host: HostStats) -> Message:
    msg: Message = {"type": "sample", "t": round(time.time(), 3)}
    msg.update(host.sample())
    msg["gpus"] = gpus.sample()
    return msg


# --------------------------------------------------------------------------- main loop


class Agent(object):
    def __init__(self, out: IO[bytes], inp: IO[bytes], interval: float, gpus: GpuBackend,
                 *, host: Optional[HostStats] = None, heartbeat_timeout: float = 60.0) -> None:
        self.out = out
        self.inp = inp
        self.interval = max(0.1, float(interval))
        self.gpus = gpus
        self.host = host if host is not None else HostStats()
        self.heartbeat_timeout = heartbeat_timeout
        self.last_input = time.monotonic()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.details: Optional[ProcessDetails] = ProcessDetails()
        self._write_lock = threading.Lock()  # samples and command replies share stdout

    def _listen(self) -> None:
        """Heartbeats and commands on stdin; EOF ends the agent."""
        try:
            for raw in iter(self.inp.readline, b""):
                self.last_input = time.monotonic()
                if command_line(self, raw):
                    continue
                words = raw.decode("utf-8", "replace").split()
                if len(words) == 2 and words[0] == "interval":
                    try:
                        self.interval = min(3600.0, max(0.1, float(words[1])))
                        self.wake.set()
                    except ValueError:
                        pass
                elif words == ["quit"]:
                    break
        except (OSError, ValueError):
            pass
        self.stop.set()
        self.wake.set()

    def write(self, message: Message) -> None:
        with self._write_lock:
            self.out.write(encode(message))
            self.out.flush()

    def sample(self) -> Message:
        message = sample_message(self.gpus, self.host)
        if self.details is not None:
            add_process_details(message, self.details)
        return message

    def run(self, once: bool = False) -> int:
        try:
            self.write(hello_message(self.gpus))
            if once:
                self.host.sample()
                time.sleep(0.1)
                self.write(sample_message(self.gpus, self.host))
                return 0
            listener = threading.Thread(target=self._listen)
            listener.daemon = True
            listener.start()
            next_tick = time.monotonic()
            while not self.stop.is_set():
                if time.monotonic() - self.last_input > self.heartbeat_timeout:
                    return 3  # the client is gone without closing stdin
                self.write(self.sample())
                next_tick += self.interval
                delay = next_tick - time.monotonic()
                if delay < 0:  # fell behind (slow NVML, suspended): do not burst
                    next_tick = time.monotonic()
                    delay = 0.0
                self.wake.wait(delay)
                if self.wake.is_set() and not self.stop.is_set():
                    self.wake.clear()
                    next_tick = time.monotonic()
            return 0
        except (OSError, ValueError):  # stdout gone: the channel closed
            return 2
        finally:
            self.gpus.close()


def main(argv: Optional[List[str]] = None, bundle: Optional[Message] = None) -> NoReturn:
    """Entry point: ``bundle`` when exec'd by the bootstrap, ``argv`` when run as a script."""
    interval = 1.0
    once = False
    heartbeat_timeout = 60.0
    source: Optional[str] = None
    health = True
    if bundle is not None:
        args = bundle.get("args", {})
        interval = float(args.get("interval", 1.0))
        once = bool(args.get("once", False))
        heartbeat_timeout = float(args.get("heartbeat_timeout", 60.0))
        source = bundle.get("pynvml")
        health = bool(args.get("health", True))
    else:
        argv = list(sys.argv[1:] if argv is None else argv)
        if "--once" in argv:
            once = True
        if "--interval" in argv:
            interval = float(argv[argv.index("--interval") + 1])
        health = "--no-health" not in argv
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    try:
        gpus: GpuBackend = open_gpus(interval, source, health=health)
    except Exception as exc:  # never die before saying why
        gpus = NoGpu("GPU probe failed: %s" % exc)
    agent = Agent(out, inp, interval, gpus, heartbeat_timeout=heartbeat_timeout)
    code = agent.run(once=once)
    try:
        out.flush()
    except (OSError, ValueError):
        pass
    # Threads reading stdin or nvidia-smi must not keep the process alive.
    os._exit(code)


