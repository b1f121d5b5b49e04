"""A big fleet from Prometheus: N hosts x 8 GPUs (default 1,000) scraped by a real
Prometheus every 5 s; the real TUI reads it through a ``[[sources]]`` entry.

Processes (so each figure is its own):

- stand-ins (``--role standins``): one HTTP server on 127.0.0.1 serving every node's
  dcgm-exporter page (tests/standins/dcgm.py), pages pre-rendered, values changing
  every 20 s;
- Prometheus (Debian's package, temp TSDB, ``scrape_interval: 5s``), targets from a
  file_sd file: one target per node, each with its own path and instance label;
- the client (``--role client``): the real ``Fleet`` with the Prometheus source at a
  5 s refresh and the real app (headless driver, 160x48) on the fleet screen.

Figures (the client prints them as JSON, this script as a table):

- first screen: from the fleet's start to the first frame painted with every host in
  the table (the first refresh included: queries, model, table build, paint);
- client CPU, % of one core (``time.process_time`` over a window of refreshes divided
  by its wall time) and peak RSS (``ru_maxrss``);
- query to paint, p50/p99: from a refresh's first query to the first frame painted
  after the table applied it;
- keypress to paint, p50/p99, ms: ``down`` and ``pagedown`` (scroll), typing a
  filter one key at a time and clearing it (filter), ``s`` (sort), posted as the
  driver posts keys (``App.simulate_key``), while refreshes go on: from the key to
  the first frame painted after the table's cursor, scroll, sort or filter changed;
- Prometheus-side cost of one refresh: its own ``execTotalTime`` (``stats=all``)
  summed over the refresh's queries, and the refresh's wall time on this side.

Run: ``python benchmarks/prom_scale.py [--hosts 1000] [--window 60]``; needs the
``prometheus`` binary. About 2 to 3 minutes at full size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = {"cpu": 25.0, "rss": 300.0, "query_paint_p99": 1000.0, "key_p99": 100.0,
           "first_screen": 3000.0}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- stand-ins


def standins(args: argparse.Namespace) -> None:
    import random

    from standins.dcgm import Gpu, Node, StandinExporters

    server = StandinExporters()
    rng = random.Random(0)
    pages: dict[str, bytes] = {}

    def make(i: int) -> Node:
        gpus = [Gpu(util=rng.choice([0.0, 0.0, 35.0, 97.0]), used=rng.uniform(0, 80000),
                    temp=rng.uniform(30, 80), power=rng.uniform(60, 690)) for _ in range(8)]
        return Node(f"gpu-{i:04d}", gpus=gpus)

    for i in range(args.hosts):
        server.add(make(i))

    def render() -> None:
        with server.lock:
            for node in server.nodes.values():
                for gpu in node.gpus:
                    gpu.util = rng.choice([0.0, 0.0, 35.0, 97.0])
                pages[node.name] = node.dcgm_page().encode()

    render()
    responses: dict[str, bytes] = {}

    def respond(name: str) -> bytes:
        body = pages.get(name)
        if body is None:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return head + body

    # Pre-rendered pages from an asyncio server with keep-alive (http.server's thread
    # per request cannot answer 200 scrapes a second on a small machine): the
    # stand-ins must not be what limits the scrape.
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                name = path.rsplit("/", 1)[-1]
                if name not in responses:
                    responses[name] = respond(name)
                writer.write(responses[name])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def serve_pages() -> None:
        server.close()  # the threaded one: only its node list and targets are used
        aserver = await asyncio.start_server(handle, "127.0.0.1", server.port)
        async with aserver:
            await aserver.serve_forever()

    def rerender_loop() -> None:
        while True:
            time.sleep(20)
            render()
            responses.clear()

    print(json.dumps({"targets": server.targets()}), flush=True)
    threading.Thread(target=rerender_loop, daemon=True).start()
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    asyncio.run(serve_pages())




# --------------------------------------------------------------------------- client


async def client(args: argparse.Namespace) -> dict[str, Any]:
    from textual.screen import Screen

    from nomadlab.cli.tui import build_app
    from nomadlab.core.config import SourceConfig, load_config_text
    from nomadlab.core.store import Store
    from nomadlab.remote.fleet import Fleet
    from nomadlab.ui.fleet.table import FleetTable

    data = Path(args.dir) / "data"
    config = load_config_text(f'show_local = false\ndata_dir = "{data}"\n')
    config.sources = [SourceConfig(name="lab", kind="prometheus", url=args.url,
                                   refresh=args.refresh, timeout=30.0)]
    store = Store(config.database)
    fleet = Fleet(config, store=store)
    source: Any = fleet.source("lab")
    frames: list[float] = []
    original_refresh = Screen._compositor_refresh

    def counted(self: Any) -> None:
        original_refresh(self)
        frames.append(time.perf_counter())

    Screen._compositor_refresh = counted  # type: ignore[method-assign]

    # query -> paint: when each refresh began, when the table applied it
    refresh_started: list[float] = []
    applied: list[tuple[float, float]] = []  # (refresh began, table applied)
    server_cost: list[float] = []
    wall_cost: list[float] = []
    query_count: list[int] = []
    original_source_refresh = source.refresh

    async def timed_refresh() -> Any:
        began = time.perf_counter()
        refresh_started.append(began)
        before = source.client.stats.server_seconds if source.client else 0.0
        asked = source.client.stats.queries if source.client else 0
        result = await original_source_refresh()
        wall_cost.append(time.perf_counter() - began)
        if source.client is not None:
            server_cost.append(source.client.stats.server_seconds - before)
            query_count.append(source.client.stats.queries - asked)
        return result

    source.refresh = timed_refresh
    # a scheduled full refresh's other half, read in the background after its frame:
    # (the refresh it follows, wall ms with its delay, hosts published again)
    background: list[tuple[int, int, int]] = []
    original_read_slow = source._read_slow

    async def timed_read_slow(client: Any) -> Any:
        began = time.perf_counter()
        after = len(wall_cost) - 1  # the refresh it follows (in the trace below)
        result = await original_read_slow(client)
        background.append((after, round(1000 * (time.perf_counter() - began)),
                           -1 if result is None else len(result.samples)))
        return result

    source._read_slow = timed_read_slow
    original_flush = FleetTable.flush

    unseen: set[float] = set()  # refreshes that changed nothing on screen when applied

    def flush(self: FleetTable) -> None:
        pending = self._repaint_required
        original_flush(self)
        if refresh_started:
            done = time.perf_counter()
            applied.append((refresh_started[-1], done))
            if not pending and not self._repaint_required:
                # nothing on screen changed: no frame is due, the screen already shows it
                unseen.add(done)

    FleetTable.flush = flush  # type: ignore[method-assign]

    # when the table finished handling a key (cursor, filter or sort set and its rows
    # marked for repaint): the frame that shows it is the first one painted after this
    handled_marks: list[tuple[float, tuple[object, ...]]] = []

    def marked(original: Any) -> Any:
        def wrapper(self: FleetTable, *a: Any, **kw: Any) -> Any:
            result = original(self, *a, **kw)
            handled_marks.append((time.perf_counter(), (
                self.cursor_row, int(self.scroll_y), self.sort_key, self.query_text)))
            return result
        return wrapper

    # what a row costs to draw: (rows recomputed, seconds), and the same for rebuilds
    costs: dict[str, list[float]] = {"_compute": [0, 0.0], "rebuild": [0, 0.0]}

    def costed(name: str, original: Any) -> Any:
        def wrapper(self: FleetTable, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            result = original(self, *a, **kw)
            costs[name][0] += 1
            costs[name][1] += time.perf_counter() - t0
            return result
        return wrapper

    for name in costs:
        setattr(FleetTable, name, costed(name, getattr(FleetTable, name)))
    for method in ("move_cursor", "set_query", "set_sort"):
        setattr(FleetTable, method, marked(getattr(FleetTable, method)))

    # the garbage collector's pauses (a full collection walks every tracked object)
    import gc

    gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_began = [0.0]
    shown_all = [False]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        elif shown_all[0]:  # after the first screen: what keys and frames meet
            gc_pauses[info["generation"]].append(time.perf_counter() - gc_began[0])

    gc.callbacks.append(gc_timer)
    app = build_app(config, start_fleet=False, store=store, fleet=fleet, initial_mode="fleet")
    out: dict[str, Any] = {}
    stalls: list[str] = []
    if args.stalls:
        # the event loop late by more than 0.3 s: where the UI thread is (to stderr)
        import traceback

        beat = [time.perf_counter()]
        main_id = threading.get_ident()

        async def heartbeat() -> None:
            while True:
                beat[0] = time.perf_counter()
                await asyncio.sleep(0.05)

        def watch() -> None:
            while True:
                time.sleep(0.1)
                late = time.perf_counter() - beat[0]
                frame = sys._current_frames().get(main_id)
                if late > 0.3 and frame is not None:
                    stalls.append(f"late {late:.2f}s:\n" + "".join(
                        traceback.format_stack(frame)[-12:]))

        asyncio.get_running_loop().create_task(heartbeat())
        threading.Thread(target=watch, daemon=True).start()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        started = time.perf_counter()
        await fleet.start()
        deadline = started + 120
        all_in = float("nan")
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
            if sum(1 for k in table.keys if k.startswith("h")) >= args.hosts:
                all_in = time.perf_counter()
                break
        while time.perf_counter() < deadline and not (frames and frames[-1] > all_in):
            await asyncio.sleep(0.01)
        # the first frame painted once every host row was in the table
        first_frame = next((f for f in frames if f > all_in), float("nan"))
        out["first_screen_ms"] = (first_frame - started) * 1000
        shown_all[0] = True
        out["hosts_shown"] = sum(1 for k in table.keys if k.startswith("h"))
        out["rows"] = len(table.keys)
        # warm up two refreshes, then measure CPU over the window
        await asyncio.sleep(2 * args.refresh)
        # the refreshes so far (the first screen's among them): wall ms, queries
        out["first_refreshes"] = [(round(1000 * w), n)
                                  for w, n in zip(wall_cost, query_count, strict=False)]
        applied.clear()
        server_cost.clear()
        wall_cost.clear()
        query_count.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.window)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        out["cpu_percent"] = 100 * (cpu1 - cpu0) / (wall1 - wall0)
        delays = []
        for began, done in applied:
            paint = done if done in unseen else next((f for f in frames if f >= done), None)
            if paint is not None:
                delays.append((paint - began) * 1000)
        # one figure per refresh: its first painted application
        per_refresh: dict[float, float] = {}
        for (began, _), d in zip(applied, delays, strict=False):
            per_refresh.setdefault(began, d)
        qp = list(per_refresh.values())
        # per refresh: (applied by the table, painted), ms after the refresh began
        trace: dict[float, tuple[int, int]] = {}
        for began, done in applied:
            paint = done if done in unseen else next((f for f in frames if f >= done),
                                                      float("nan"))
            trace.setdefault(began, (round((done - began) * 1000),
                                     round((paint - began) * 1000)))
        out["query_paint_trace"] = list(trace.values())
        out["query_paint_ms"] = {"p50": pct(qp, 50), "p99": pct(qp, 99), "n": len(qp)}
        out["prometheus_exec_ms_per_refresh"] = (1000 * sum(server_cost) / len(server_cost)
                                                 if server_cost else float("nan"))
        out["refresh_wall_ms"] = {"p50": pct([w * 1000 for w in wall_cost], 50),
                                  "p99": pct([w * 1000 for w in wall_cost], 99)}
        out["queries_per_refresh"] = sorted(set(query_count))
        out["background_reads"] = list(background)
        out["background_delay"] = source.background_delay

        def state() -> tuple[object, ...]:
            return (table.cursor_row, int(table.scroll_y), table.sort_key, table.query_text)

        async def key(k: str) -> float:
            """Key posted (as the terminal driver does) -> handled (the table's cursor,
            scroll, sort or filter changed) -> the first frame painted after that.
            Not pilot.press: it also waits for every queue in the app to run dry."""
            before = state()
            marks = len(handled_marks)
            began = time.perf_counter()
            app.simulate_key(k)
            limit = began + 30
            while time.perf_counter() < limit and state() == before:
                await asyncio.sleep(0.0005)
            # not the time this loop noticed the change: a frame may have been painted
            # in between (then the next one can be seconds away, when nothing changes)
            handled = next((t for t, after in handled_marks[marks:] if after != before),
                           time.perf_counter())
            dumped = False
            while time.perf_counter() < limit and not (frames and frames[-1] >= handled):
                await asyncio.sleep(0.0005)
                if args.stalls and not dumped and time.perf_counter() - handled > 0.5:
                    # no frame half a second after the key: where the screen's task is
                    dumped = True
                    import io

                    scr = app.screen
                    timer = getattr(scr, "_Screen__update_timer", None)
                    print(f"no frame for key {k!r}: table repaint "
                          f"{table._repaint_required} dirty widgets {scr._dirty_widgets} "
                          f"layout {scr._layout_required} timer "
                          f"{timer._active.is_set() if timer else None} "
                          f"batch {app._batch_count}", file=sys.stderr)
                    for pump in (table, app.screen, app):
                        task = getattr(pump, "_task", None)
                        buf = io.StringIO()
                        if task is not None:
                            task.print_stack(limit=30, file=buf)
                        queue = getattr(pump, "_message_queue", None)
                        print(f"no frame for key {k!r}: {pump!r} queue "
                              f"{queue.qsize() if queue else '?'}\n{buf.getvalue()}",
                              file=sys.stderr)
            painted = next((f for f in frames if f >= handled), time.perf_counter())
            if painted - began > 0.1:
                # where the time went: to the key's handling, or to the frame after it
                split.append((k, round((handled - began) * 1000),
                              round((painted - handled) * 1000)))
            await asyncio.sleep(0.05)  # a person does not type faster than this
            return (painted - began) * 1000

        split: list[tuple[str, int, int]] = []  # slow keys: (key, to handled, to painted)
        keys: dict[str, list[float]] = {"scroll": [], "filter": [], "sort": []}
        table.focus()
        await pilot.pause()
        for _ in range(40):
            keys["scroll"].append(await key("down"))
        for _ in range(10):
            keys["scroll"].append(await key("pagedown"))
        for _ in range(3):
            await pilot.press("slash")
            await pilot.pause()
            for ch in "gpu-07":
                keys["filter"].append(await key(ch))
            for _ in range(6):
                keys["filter"].append(await key("backspace"))
            await pilot.press("escape")
            await pilot.pause()
            table.focus()
            await pilot.pause()
        for _ in range(12):
            keys["sort"].append(await key("s"))
        out["keys_ms"] = {name: {"p50": pct(v, 50), "p99": pct(v, 99), "n": len(v)}
                          for name, v in keys.items()}
        # which keys were slow (their position in the run): one slow first key is not
        # the same story as slow keys spread over the run
        out["slow_keys"] = {name: [(i, round(x)) for i, x in enumerate(v) if x > 100]
                            for name, v in keys.items()}
        every = [x for v in keys.values() for x in v]
        out["keys_ms"]["all"] = {"p50": pct(every, 50), "p99": pct(every, 99), "n": len(every)}
        out["slow_key_split"] = split
        out["table_costs"] = {n: (int(c), round(1000 * t / max(1, c), 2))
                              for n, (c, t) in costs.items()}
        out["gc_pauses"] = {g: (len(v), round(1000 * max(v, default=0.0)))
                            for g, v in gc_pauses.items()}
        out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for stall in stalls:
            print(stall, file=sys.stderr)
        await fleet.stop()
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["main", "standins", "client"], default="main")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--refresh", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--url", default="")
    parser.add_argument("--dir", default="")
    parser.add_argument("--stalls", action="store_true",
                        help="print where the UI thread was when the event loop ran late")
    parser.add_argument("--profile", action="store_true",
                        help="profile the client; the profile goes to stderr")
    args = parser.parse_args()
    if args.role == "standins":
        standins(args)
        return
    if args.role == "client":
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            figures = profiler.runcall(asyncio.run, client(args))
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(30)
        else:
            figures = asyncio.run(client(args))
        print(json.dumps(figures), flush=True)
        return

    from prom import PromServer

    work = Path(tempfile.mkdtemp(prefix="nomadlab-prom-bench-"))
    stand = subprocess.Popen([sys.executable, __file__, "--role", "standins", "--hosts",
                              str(args.hosts)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert stand.stdout is not None and stand.stdin is not None
    targets = json.loads(stand.stdout.readline())["targets"]
    prom_dir = work / "prom"
    prom_dir.mkdir()
    prom = PromServer(prom_dir, scrape_interval="5s")
    prom.start()
    try:
        prom.set_targets(targets)
        began = time.monotonic()
        prom.wait_for("count(up == 1)",
                      lambda r: bool(r) and int(float(r[0]["value"][1])) >= args.hosts,
                      limit=120)
        prom.wait_for("count(DCGM_FI_DEV_GPU_UTIL)",
                      lambda r: bool(r) and int(float(r[0]["value"][1])) >= 8 * args.hosts,
                      limit=60)
        print(f"prometheus: {args.hosts} targets up after {time.monotonic() - began:.0f}s; "
              f"{8 * args.hosts} GPUs, scrape interval 5s", flush=True)
        result = subprocess.run(
            [sys.executable, __file__, "--role", "client", "--url", prom.url, "--dir",
             str(work), "--hosts", str(args.hosts), "--refresh", str(args.refresh),
             "--window", str(args.window), *(["--profile"] if args.profile else []),
             *(["--stalls"] if args.stalls else [])],
            capture_output=True, text=True, check=False,
            env={**os.environ, "TERM": "xterm-256color"})
        if result.returncode != 0:
            print(result.stderr[-3000:])
            sys.exit(1)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        if args.profile or args.stalls:
            (work / "profile.txt").write_text(result.stderr)
            print(f"profile: {work / 'profile.txt'}")
    finally:
        prom.stop()
        stand.stdin.close()
        stand.wait(10)
    report(args, figures)


def report(args: argparse.Namespace, f: dict[str, Any]) -> None:
    def line(name: str, value: float, unit: str, target: float | None) -> None:
        mark = "" if target is None else ("  ok" if value <= target else "  MISSED")
        goal = "" if target is None else f"  (target < {target:g} {unit})"
        print(f"  {name:<34} {value:>9.1f} {unit:<3}{goal}{mark}")

    print(f"\n{args.hosts} hosts x 8 GPUs = {f['rows']} rows ({f['hosts_shown']} hosts shown), "
          f"refresh {args.refresh:g}s, window {args.window:g}s, os.cpu_count()={os.cpu_count()}")
    line("first screen, every host", f["first_screen_ms"], "ms", TARGETS["first_screen"])
    line("client CPU (% of one core)", f["cpu_percent"], "%", TARGETS["cpu"])
    line("client peak RSS", f["rss_mb"], "MB", TARGETS["rss"])
    qp = f["query_paint_ms"]
    line(f"query -> paint p50 (n={qp['n']})", qp["p50"], "ms", None)
    line("query -> paint p99", qp["p99"], "ms", TARGETS["query_paint_p99"])
    for name, v in f["keys_ms"].items():
        line(f"keypress {name} p50 (n={v['n']})", v["p50"], "ms", None)
        line(f"keypress {name} p99", v["p99"], "ms", TARGETS["key_p99"])
    # summed over the refresh's queries: those run at once count their waits for a core
    line("Prometheus exec per refresh (sum)", f["prometheus_exec_ms_per_refresh"], "ms",
         None)
    line("refresh wall time p50", f["refresh_wall_ms"]["p50"], "ms", None)
    line("refresh wall time p99", f["refresh_wall_ms"]["p99"], "ms", None)
    print(f"  keys over 100 ms (position, ms): {f.get('slow_keys')}")
    print("  slow keys (key, ms to handled, ms from handled to painted): "
          f"{f.get('slow_key_split')}")
    print("  table work (calls, ms each; rebuild includes its rows' recompute when "
          f"nested): {f.get('table_costs')}")
    print("  garbage collections after the first screen, by generation (count, longest ms): "
          f"{f.get('gc_pauses')}")
    print("  per refresh, ms after its first query (table applied, frame painted): "
          f"{f.get('query_paint_trace')}")
    print(f"  first refreshes (wall ms, queries): {f.get('first_refreshes')}")
    print(f"  queries per refresh: {f['queries_per_refresh']} (instant: one per moving GPU "
          "counter, node, CPU, up; +2 (other counters, identities) on the first refresh "
          "or for a new GPU or target; +1 range query when new hosts appear)")
    print("  every 12th refresh, after its frame, in the background (other counters, "
          "identities, used memory; the refresh it follows, wall ms with its "
          f"{f.get('background_delay')}s delay, hosts published again): "
          f"{f.get('background_reads')}")


if __name__ == "__main__":
    main()
