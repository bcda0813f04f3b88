#!/usr/bin/env python3
"""How far below grpcio can a unary etcd call go? (issue 16: a native HTTP/2 spike)

    python bench/below_grpcio.py [--quick] [--rounds 5] [-n 5000] [--threads 8] [--json FILE] [--markdown]

Builds bench/h2spike/_h2.pyx out of tree (bench/h2spike/build.py), starts one
real etcd (etcdfast.testing.EtcdServer) and an echo server, then:

1. **checks** (bench/h2spike/checks.py): ``--ops`` random Range/Put calls
   answered the same by the native path and grpcio; responses and requests
   larger than 64 KiB flow-control windows; 8 threads on one connection;
   immediate PING acks; deadlines, GOAWAY and etcd stopped/killed mid-run (on
   a second etcd of their own); what HPACK blocks cost. Any failure: exit 1.
2. **benchmark**: sequential put and get for the socket floor, the native
   path, raw grpcio, etcdfast's Client and etcdfast's Client over the native
   transport, each a fresh worker process (bench/h2spike/worker.py) per
   workload, ``--rounds`` interleaved rounds (A..E then E..A), then the same
   with ``--threads`` threads sharing one connection, plus an in-process A/B
   of native vs raw grpcio per round. Figures are medians over rounds, ratios
   medians of per-round ratios; etcd's own CPU per call comes from
   /proc/PID/stat around each worker.

``--quick`` (CI smoke): 1,000 random ops, 2 rounds of 300 calls, < 1 minute.
Needs the ``hpack`` package (``pip install hpack``) and a C compiler.
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
from typing import Any, Callable, Dict, List, Optional, Tuple

BENCH = Path(__file__).resolve().parent
SPIKE = BENCH / "h2spike"
sys.path[:0] = [str(BENCH), str(SPIKE)]

import build  # noqa: E402
import checks  # noqa: E402
from e2e import loadavg, machine_info, render  # noqa: E402

from etcdfast.testing import EtcdServer  # noqa: E402

CLIENTS = ("floor", "native", "raw-grpcio", "etcdfast", "etcdfast-native")
WORKLOADS = ("put", "get")
RATIOS = (  # (numerator, denominator, what)
    ("native", "raw-grpcio", "native / raw grpcio"),
    ("etcdfast-native", "etcdfast", "etcdfast over native / etcdfast over grpcio"),
    ("etcdfast-native", "raw-grpcio", "etcdfast over native / raw grpcio"),
    ("floor", "native", "socket floor / native"),
)
METRICS = ("cpu_us_per_op", "p50_us", "p99_us")
Record = Dict[str, Any]


def etcd_cpu(pid: Optional[int]) -> float:
    """utime + stime of etcd's process, seconds."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(server: EtcdServer, echo: str, client: str, workloads: List[str], n: int,
               threads: int, env: Dict[str, str], timeout: float) -> List[Record]:
    command = [sys.executable, str(SPIKE / "worker.py"), *workloads, "--endpoint", server.endpoint,
               "--client", client, "-n", str(n), "--echo", echo, "--threads", str(threads)]
    before = etcd_cpu(server.pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    server_cpu = etcd_cpu(server.pid) - before
    if done.returncode:
        raise RuntimeError(f"{client} {workloads} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    calls = sum(r["ops"] + min(50, n) for r in records if "ops" in r) or 1
    for r in records:
        r["threads"] = threads
        # Warm-up calls hit etcd too: its CPU is shared out over every call the worker made.
        r["etcd_cpu_us_per_call"] = server_cpu / calls * 1e6
    return records


def bench(server: EtcdServer, echo: str, rounds: int, n: int, threads: int, env: Dict[str, str],
          log: Callable[[str], None]) -> List[Record]:
    records: List[Record] = []
    configs = [1] + ([threads] if threads > 1 else [])
    for width in configs:
        for r in range(rounds):
            order = CLIENTS if r % 2 == 0 else CLIENTS[::-1]
            for client in order:
                for workload in WORKLOADS:
                    for rec in run_worker(server, echo, client, [workload], n, width, env, 300):
                        rec["round"] = r
                        records.append(rec)
            if width == 1:
                for rec in run_worker(server, echo, "ab", list(WORKLOADS), n, 1, env, 300):
                    rec["round"], rec["ab"] = r, True
                    records.append(rec)
            log(f"  threads={width} round {r + 1}/{rounds} done, load {loadavg()}")
    return records


def median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(records: List[Record]) -> Dict[str, Any]:
    timed = [r for r in records if "cpu_us_per_op" in r]
    table: Dict[Tuple[int, str, str], Dict[str, float]] = {}
    for key in {(r["threads"], r["client"], r["workload"]) for r in timed if not r.get("ab")}:
        rows = [r for r in timed if not r.get("ab") and (r["threads"], r["client"], r["workload"]) == key]
        table[key] = {m: median([r[m] for r in rows]) for m in
                      ("cpu_us_per_op", "p50_us", "p99_us", "ops_per_s", "etcd_cpu_us_per_call")}
        table[key]["runs"] = [round(r["cpu_us_per_op"], 1) for r in rows]  # type: ignore[assignment]
    ratios: Dict[str, float] = {}
    rounds = sorted({x["round"] for x in timed})

    def value(r: int, threads: int, client: str, workload: str, metric: str) -> Optional[float]:
        for x in timed:
            if (not x.get("ab") and x["round"] == r
                    and (x["threads"], x["client"], x["workload"]) == (threads, client, workload)):
                return float(x[metric])
        return None

    for threads in sorted({k[0] for k in table}):
        for top, bottom, what in RATIOS:
            for workload in WORKLOADS:
                for metric in METRICS:
                    pairs = [(value(r, threads, top, workload, metric),
                              value(r, threads, bottom, workload, metric)) for r in rounds]
                    per_round = [a / b for a, b in pairs if a is not None and b]
                    if per_round:
                        ratios[f"{workload} x{threads}: {what}: {metric}"] = median(per_round)
    for workload in WORKLOADS:
        ab = [r["ab_cpu_ratio"] for r in timed if r.get("ab") and r["client"] == "native"
              and r["workload"] == workload]
        if ab:
            ratios[f"{workload} x1: native / raw grpcio, in-process A/B: cpu_us_per_op"] = median(ab)
    stats = [r for r in records if r.get("workload") == "stats"]
    per_call = {}
    for client in ("native", "etcdfast-native"):
        for threads in sorted({r["threads"] for r in stats}):
            rows = [r for r in stats if r["client"] == client and r["threads"] == threads]
            if rows:
                per_call[f"{client} x{threads}"] = {
                    k: round(median([r[k] for r in rows]), 2) for k in rows[0]
                    if k.endswith("_per_call") and not k.startswith("etcd_")}
    return {"table": {f"{k[1]} {k[2]} x{k[0]}": v for k, v in sorted(table.items())},
            "ratios": ratios, "syscalls": per_call}


def report(summary: Dict[str, Any], markdown: bool) -> str:
    rows = []
    for name, v in summary["table"].items():
        rows.append([name, f"{v['cpu_us_per_op']:.1f}", f"{v['p50_us']:.0f}", f"{v['p99_us']:.0f}",
                     f"{v['ops_per_s']:,.0f}", f"{v['etcd_cpu_us_per_call']:.1f}",
                     " ".join(str(x) for x in v["runs"])])
    out = [render(["client workload threads", "CPU us/call", "p50 us", "p99 us", "calls/s",
                   "etcd CPU us/call", "CPU per round"], rows, markdown), ""]
    rows = []
    for name in dict.fromkeys(k.rsplit(": ", 1)[0] for k in summary["ratios"]):
        found = [summary["ratios"].get(f"{name}: {m}") for m in METRICS]
        rows.append([name] + ["-" if v is None else f"{v:.3f}" for v in found])
    out.append(render(["ratio (median of per-round ratios)", "CPU/call", "p50", "p99"], rows, markdown))
    out.append("")
    out.append(render(["native connection, per call", "value"],
                      [[f"{who}: {k}", f"{v}"] for who, d in summary["syscalls"].items()
                       for k, v in d.items()],
                      markdown))
    return "\n".join(out)


def verdict(summary: Dict[str, Any]) -> List[str]:
    """The issue's bar: native CPU/call <= 0.4x raw grpcio's and a p99 no worse."""
    lines = []
    ratios = summary["ratios"]
    for workload in WORKLOADS:
        cpu = ratios.get(f"{workload} x1: native / raw grpcio: cpu_us_per_op")
        ab = ratios.get(f"{workload} x1: native / raw grpcio, in-process A/B: cpu_us_per_op")
        p99 = ratios.get(f"{workload} x1: native / raw grpcio: p99_us")
        if cpu is None or p99 is None:
            continue
        ok = cpu <= 0.4 and (ab is None or ab <= 0.4) and p99 <= 1.0
        in_process = "-" if ab is None else f"{ab:.2f}"
        lines.append(f"{workload}: CPU/call {cpu:.2f}x raw grpcio (A/B {in_process}x),"
                     f" p99 {p99:.2f}x: {'meets' if ok else 'misses'} the <= 0.4x / p99-no-worse bar")
    return lines


def run_checks(h2: Any, server: EtcdServer, ops: int, log: Callable[[str], None]) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    steps: List[Tuple[str, Callable[[], Any]]] = [
        ("hpack_cost", lambda: checks.hpack_cost(h2, 2000 if ops < 5000 else 20000)),
        ("differential", lambda: checks.differential(h2, server.endpoint, ops)),
        ("large_messages", lambda: checks.large_messages(h2, server.endpoint)),
        ("threads_share", lambda: checks.threads_share(h2, server.endpoint)),
        ("pings_now", lambda: checks.pings_now(h2, server.endpoint)),
    ]
    for name, step in steps:
        started = time.monotonic()
        results[name] = step()
        shown = json.dumps(results[name], default=str)[:300]
        log(f"  check {name}: ok ({time.monotonic() - started:.1f} s) {shown}")
    started = time.monotonic()
    with EtcdServer() as own:  # paused, stopped and killed: not the benchmark's server
        results["faults"] = checks.faults(h2, own)
    log(f"  check faults: ok ({time.monotonic() - started:.1f} s)")
    for what, text in results["faults"].items():
        log(f"    {what}: {text}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small counts, 2 rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=5000, help="sequential calls per worker and workload")
    parser.add_argument("--threads", type=int, default=8, help="threads sharing one connection (0: skip)")
    parser.add_argument("--ops", type=int, default=10_000, help="random calls of the differential check")
    parser.add_argument("--checks-only", action="store_true")
    parser.add_argument("--skip-checks", action="store_true")
    parser.add_argument("--json", help="write every record, the summary and the checks here")
    parser.add_argument("--markdown", action="store_true")
    opts = parser.parse_args()
    if opts.quick:
        opts.rounds, opts.n, opts.ops = 2, 300, 1000
    opts.rounds, opts.n = max(1, min(opts.rounds, 20)), max(10, min(opts.n, 100_000))
    opts.ops = max(0, min(opts.ops, 100_000))

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started, load_start = time.monotonic(), loadavg()
    h2 = build.load()
    where = build.build()
    env = {**os.environ, "BENCH_H2_BUILD_DIR": str(where)}
    out: Dict[str, Any] = {"command": " ".join(sys.argv), "load_start": load_start}
    echo = subprocess.Popen([sys.executable, str(SPIKE / "worker.py"), "--serve-echo"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        echo_at = echo.stdout.readline().strip()
        with EtcdServer() as server:
            out["machine"] = machine_info(".".join(map(str, server.version)))
            log(f"etcd {server.endpoint} (pid {server.pid}), echo {echo_at}, module {where},"
                f" load {load_start}")
            if not opts.skip_checks:
                out["checks"] = run_checks(h2, server, opts.ops, log)
                out["load_after_checks"] = loadavg()
            if not opts.checks_only:
                out["records"] = bench(server, echo_at, opts.rounds, opts.n, opts.threads, env, log)
                out["summary"] = summarize(out["records"])
    finally:
        if echo.stdin is not None:
            echo.stdin.close()
        echo.wait(10)
    out["load_end"], out["seconds"] = loadavg(), round(time.monotonic() - started, 1)
    if "summary" in out:
        print(report(out["summary"], opts.markdown))
        print()
        out["verdict"] = verdict(out["summary"])
        print("\n".join(out["verdict"]))
    print(f"\nload {out['load_start']} -> {out['load_end']}; {out['seconds']} s; "
          f"{out.get('machine', {}).get('cpu', '?')}, {os.cpu_count()} cores")
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
