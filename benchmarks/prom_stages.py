"""Where one Prometheus refresh spends its time at N hosts x 8 GPUs (default 1,000),
stage by stage, without the UI: each query's HTTP answer (bytes, Prometheus's own
time), ``json`` decoding (``loads_in_steps``) against the client's whole
``query_blocking`` (fetch and parse), the model update, the whole refresh as the
source runs it, publishing into a real ``Fleet`` (history, aggregates, listeners),
and what one refresh allocates (tracemalloc).

Stand-ins and Prometheus as in ``prom_scale.py`` (``--url`` measures against one that
is already running; ``--serve`` starts them and prints the URL until stdin closes).

Run: ``python benchmarks/prom_stages.py [--hosts 1000] [--rounds 6]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{1000 * statistics.median(values):7.1f} ms (max {1000 * max(values):.1f})"


def stages(url: str, hosts: int, rounds: int) -> None:
    from nomadlab.core.config import SourceConfig, load_config_text
    from nomadlab.core.promfleet import PromFleet
    from nomadlab.core.promql import queries
    from nomadlab.core.store import Store
    from nomadlab.remote.fleet import Fleet
    from nomadlab.remote.prometheus import PrometheusClient, loads_in_steps

    q = queries()
    client = PrometheusClient(url, timeout=60)
    print(f"{hosts} hosts x 8 GPUs, {rounds} rounds; median (max)")
    every = {f"lean {n.removeprefix('DCGM_FI_DEV_')}": x for n, x in q.lean.items()}
    every.update({"slow (full refresh)": q.slow, "identity (full refresh)": q.identity,
                  "all in one": q.gpus, "node": q.node, "cpu": q.cpu, "up": q.up})
    for name, promql in every.items():
        fetch: list[float] = []
        decode: list[float] = []
        build: list[float] = []
        server: list[float] = []
        size = count = 0
        for _ in range(rounds):
            params = urllib.parse.urlencode({"query": promql, "stats": "all"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=60) as r:
                body = r.read()
            t1 = time.perf_counter()
            data = loads_in_steps(body)
            t2 = time.perf_counter()
            before = client.stats.server_seconds
            series = client._decode(body)
            t3 = time.perf_counter()
            out = client.query_blocking(promql)
            t4 = time.perf_counter()
            server.append(client.stats.server_seconds - before)
            fetch.append(t1 - t0)
            decode.append(t2 - t1)
            build.append(t4 - t3)
            size, count = len(body), len(out)
            del data, series, out
        print(f"  {name:<23} {count:6d} series {size / 1e6:6.2f} MB  "
              f"HTTP {ms(fetch)}  json {ms(decode)}  "
              f"Prometheus {ms(server)}  query_blocking {ms(build)}")

    async def model_and_publish() -> None:
        work = Path(tempfile.mkdtemp(prefix="nomadlab-prom-stages-"))
        config = load_config_text(f'show_local = false\ndata_dir = "{work}"\n')
        config.sources = [SourceConfig(name="lab", kind="prometheus", url=url,
                                       refresh=5.0, timeout=60.0)]
        fleet = Fleet(config, store=Store(config.database))
        source = fleet.source("lab")
        cl = PrometheusClient(url, timeout=60)
        fast = {n: cl.query_blocking(x) for n, x in q.lean.items()}
        node, cpu, up = [cl.query_blocking(x) for x in (q.node, q.cpu, q.up)]
        full = cl.query_blocking(q.gpus)
        model = PromFleet("lab")
        updates: dict[str, list[float]] = {"full": [], "lean": []}
        for i in range(rounds):
            kind = "full" if i == 0 else "lean"
            t0 = time.perf_counter()
            model.update(time.time(), full if i == 0 else fast, node, cpu, up, full=i == 0)
            updates[kind].append(time.perf_counter() - t0)
        print(f"  model update: full {ms(updates['full'])}  lean {ms(updates['lean'])}")
        walls: list[float] = []
        for i in range(rounds + 1):
            t0 = time.perf_counter()
            await source.refresh()
            if i:  # the first one publishes new hosts and back-fills
                walls.append(time.perf_counter() - t0)
        print(f"  source.refresh (queries + model + publish into a Fleet): {ms(walls)}")
        gc.collect()
        tracemalloc.start()
        await source.refresh()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  one refresh: {current / 1e6:.1f} MB kept, {peak / 1e6:.1f} MB peak "
              "(tracemalloc)")
        print(f"  RSS peak of this process: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        await fleet.stop()

    asyncio.run(model_and_publish())


def serve(hosts: int) -> tuple[Any, Any, str]:
    from prom import PromServer

    work = Path(tempfile.mkdtemp(prefix="nomadlab-prom-stages-"))
    stand = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "prom_scale.py"),
                              "--role", "standins", "--hosts", str(hosts)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert stand.stdout is not None
    targets = json.loads(stand.stdout.readline())["targets"]
    (work / "prom").mkdir()
    prom = PromServer(work / "prom", scrape_interval="5s")
    prom.start()
    prom.set_targets(targets)
    prom.wait_for("count(DCGM_FI_DEV_GPU_UTIL)",
                  lambda r: bool(r) and int(float(r[0]["value"][1])) >= 8 * hosts, limit=180)
    return stand, prom, prom.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--url", default="")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.url:
        stages(args.url, args.hosts, args.rounds)
        return
    stand, prom, url = serve(args.hosts)
    try:
        if args.serve:
            print(url, flush=True)
            sys.stdin.read()
        else:
            stages(url, args.hosts, args.rounds)
    finally:
        prom.stop()
        assert stand.stdin is not None
        stand.stdin.close()
        stand.wait(10)


if __name__ == "__main__":
    main()
