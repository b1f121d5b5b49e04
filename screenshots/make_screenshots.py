"""Make the README's screenshots from `nomadlab demo`: python screenshots/make_screenshots.py

The demo's simulated hosts and the client run on a clock that goes 10x faster than
the wall clock (samples every 0.1 s of real time are 1 s apart in their time), so
half a minute fills the five-minute sparklines. Everything else is the real path:
SSH on 127.0.0.1, host-key checks, the agent, the fleet, the TUI. SVGs land next to
this script; `rsvg-convert x.svg -o x.png` turns one into a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from nomadlab.cli.demo_seed import offline, seed
from nomadlab.cli.tui import build_app
from nomadlab.core.store import Store
from nomadlab.remote.demo import DemoFleet
from nomadlab.remote.fleet import Fleet

HERE = Path(__file__).resolve().parent
SPEED = 10.0


class FastClock:
    """Wall and monotonic time running SPEED times faster than real time."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.wall0 = time.time()
        self.mono0 = time.monotonic()

    def time(self) -> float:
        return self.wall0 + (time.monotonic() - self.mono0) * self.speed

    def monotonic(self) -> float:
        return self.mono0 + (time.monotonic() - self.mono0) * self.speed


async def shoot(seconds: float) -> list[Path]:
    clock = FastClock(SPEED)
    made: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="nomadlab-shots-") as tmp:
        async with DemoFleet(hosts=4, seed=7, clock=clock, base_dir=tmp) as demo:
            config = demo.config(Path(tmp) / "data", interval=1.0 / SPEED)
            config.fleet.stale_after = 5.0
            offline(config)
            store = Store(config.database)
            fleet = Fleet(config, store=store, clock=clock)
            app = build_app(config, clock=clock, store=store, fleet=fleet)
            seed(app.services)
            async with app.run_test(size=(160, 48)) as pilot:
                await pilot.pause()
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                for name, keys, size in (
                    ("workspace", [], (160, 48)),
                    ("fleet", ["1", "down", "down", "down", "down", "down", "down", "down",
                               "down", "down", "down", "down", "down"], (160, 48)),
                    # lambda-h100's GPU 7 (XID 48, a row remap pending): its health detail
                    ("gpu-health", ["down"] * 14 + ["enter"], (160, 48)),
                    ("free-gpus", ["escape", "f"], (160, 48)),
                    ("logs", ["escape", "2"], (160, 48)),
                    ("alerts", ["exclamation_mark"], (160, 48)),
                    ("board", ["3"], (160, 48)),
                    ("papers", ["4"], (160, 48)),
                    ("focus", ["5"], (160, 48)),
                ):
                    await pilot.resize_terminal(*size)
                    await pilot.press(*keys)
                    await asyncio.sleep(0.6)
                    await pilot.pause()
                    path = HERE / f"{name}.svg"
                    app.save_screenshot(filename=path.name, path=str(HERE))
                    made.append(path)
                await pilot.press("0")
                await pilot.resize_terminal(80, 24)
                await asyncio.sleep(0.6)
                await pilot.pause()
                app.save_screenshot(filename="workspace-80x24.svg", path=str(HERE))
                made.append(HERE / "workspace-80x24.svg")
                await pilot.press("1")
                await asyncio.sleep(0.6)
                await pilot.pause()
                app.save_screenshot(filename="fleet-80x24.svg", path=str(HERE))
                made.append(HERE / "fleet-80x24.svg")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=32.0,
                        help="real seconds of history before the shots (x10 in demo time)")
    args = parser.parse_args()
    for path in asyncio.run(shoot(args.seconds)):
        print(path)


if __name__ == "__main__":
    main()
