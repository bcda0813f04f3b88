"""Watch throughput, side by side in one run against one etcd.

For each client (etcdfast fast and pure twins, a raw-grpcio floor that does
not decode at all, the same floor decoding with etcdfast's fast codec, that
floor again without grpcio's channel thread (a single-request watch on grpcio's
experimental single-threaded unary-stream call, which no real client can use),
and python-etcd3 / etcd-sdk-python from their own venvs when present), a watcher process watches
a fresh prefix while a separate writer process puts ``--events`` keys under it
from 16 threads, as fast as the server takes them. Reported per client: events
per second delivered to Python, client CPU per event, and the lag between the
writer's last put and the watcher's last event (small: the watcher keeps up).
Clients run interleaved, ``--reps`` times, medians reported.

    python bench/watch_e2e.py [--events 50000] [--reps 2] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from etcdfast.testing import EtcdServer, etcd_version

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers"
VENVS = Path(os.environ.get("ETCDFAST_BENCH_VENVS", "/tmp/bench-venvs"))

Client = Tuple[str, str, Dict[str, str], List[str]]  # name, python, env, worker args


def clients() -> List[Client]:
    found: List[Client] = [
        ("etcdfast-fast", sys.executable, {"ETCDFAST_PURE": ""}, ["--client", "etcdfast"]),
        ("etcdfast-pure", sys.executable, {"ETCDFAST_PURE": "1"}, ["--client", "etcdfast"]),
        ("raw-grpc", sys.executable, {}, ["--client", "raw"]),
        ("raw-grpc-decode", sys.executable, {"ETCDFAST_PURE": ""}, ["--client", "raw-decode"]),
        ("raw-grpc-1thread-decode", sys.executable, {"ETCDFAST_PURE": ""},
         ["--client", "raw-1thread-decode"]),
    ]
    peers = [
        # python-etcd3's generated code needs the pure-Python protobuf runtime today.
        ("python-etcd3", "etcd3", {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}, "etcd3"),
        ("etcd-sdk-python", "etcd-sdk-python", {}, "pyetcd"),
    ]
    for name, venv, env, module in peers:
        python = VENVS / venv / "bin" / "python"
        if python.exists():
            found.append((name, str(python), env, ["--client", module]))
        else:
            print(f"# {name}: no venv at {python.parent.parent}, skipped", file=sys.stderr)
    return found


def run_one(client: Client, endpoint: str, prefix: str, events: int) -> Optional[Dict[str, Any]]:
    name, python, env, args = client
    watcher = subprocess.Popen(
        [python, str(WORKERS / "watch_worker.py"), *args, "--endpoint", endpoint,
         "--prefix", prefix, "--events", str(events)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **env},
    )
    try:
        assert watcher.stdout is not None
        if watcher.stdout.readline().strip() != "ready":
            print(f"# {name}: watcher did not start", file=sys.stderr)
            return None
        writer = subprocess.run(
            [sys.executable, str(WORKERS / "watch_writer.py"), "--endpoint", endpoint,
             "--prefix", prefix, "--count", str(events)],
            capture_output=True, text=True, check=True, timeout=300,
        )
        line = watcher.stdout.readline()
        watcher.wait(timeout=60)
        if not line:
            # A peer that cannot keep up may fail outright (python-etcd3 at
            # 200k events: etcd batches the backlog into responses over its
            # 4 MiB receive limit); its traceback went to stderr above.
            print(f"# {name}: watcher failed (exit status {watcher.returncode}), rep skipped",
                  file=sys.stderr)
            return None
        result = json.loads(line)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    wrote = json.loads(writer.stdout)
    result.update(
        name=name,
        writer_puts_per_s=wrote["puts_per_s"],
        events_per_s=result["events"] / max(result["last_event_at"] - wrote["started_at"], 1e-9),
        lag_s=result["last_event_at"] - wrote["ended_at"],
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2,000 events, one repetition (CI smoke)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    if args.quick:
        args.events, args.reps = 2_000, 1
    runs: Dict[str, List[Dict[str, Any]]] = {}
    with EtcdServer() as server:
        version = ".".join(map(str, etcd_version(server.binary)))
        for rep in range(args.reps):
            order = clients() if rep % 2 == 0 else list(reversed(clients()))  # ABBA
            for client in order:
                result = run_one(client, server.endpoint, f"/watch-bench/{rep}/{client[0]}/", args.events)
                if result is not None:
                    runs.setdefault(client[0], []).append(result)
                    print(f"# {client[0]} rep {rep}: {result['events_per_s']:,.0f} ev/s, "
                          f"{result['cpu_us_per_event']:.2f} µs CPU/event", file=sys.stderr)
    table = {
        name: {
            key: statistics.median(r[key] for r in results)
            for key in ("events_per_s", "cpu_us_per_event", "lag_s", "writer_puts_per_s")
        } | {"events": results[0]["events"]}
        for name, results in runs.items()
    }
    print(f"\nwatch throughput: {args.events:,} events, etcd {version}, "
          f"{os.cpu_count()} CPUs, median of {args.reps}")
    print(f"{'client':24} {'events/s':>10} {'CPU µs/event':>13} {'lag s':>7} {'writer puts/s':>14}")
    for name, row in table.items():
        print(f"{name:24} {row['events_per_s']:10,.0f} {row['cpu_us_per_event']:13.2f} "
              f"{row['lag_s']:7.2f} {row['writer_puts_per_s']:14,.0f}")
    fast = table.get("etcdfast-fast")
    if fast:
        for other in table:
            if other != "etcdfast-fast":
                ratio = table[other]["cpu_us_per_event"] / fast["cpu_us_per_event"]
                print(f"client CPU per event, {other} / etcdfast-fast: {ratio:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"events": args.events, "etcd": version, "table": table,
                                         "runs": runs, "time": time.time()}, indent=2))


if __name__ == "__main__":
    main()
