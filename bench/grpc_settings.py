"""Which grpcio settings lower grpcio's own cost per small sequential call?

    python bench/grpc_settings.py [--quick] [--endpoints HOST:PORT] [--json out.json]
                                  [--markdown] [--only NAME,...] [--rounds N]

Runs the raw grpcio worker (bench/workers/raw_grpc_worker.py: pre-encoded
requests, no decoding -- the cost of grpcio alone) under one setting at a
time: a channel option, a way of calling, or an environment variable.

Settings that can differ between two channels of one process are measured
in-process (the worker's ``--ab``): the default and the variant alternate in
blocks of a few hundred calls, so both sides see the same machine load; the
"control" row runs identical settings on both sides and shows what noise
alone looks like. Environment variables and grpc.aio act per process, so
those run as separate processes right next to a baseline process (B V, then
V B in the next round). Every figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import e2e

# (name, worker flags, environment, what it is). Channel options are passed
# with --option, so they reach any worker; "call" flags exist on the raw
# worker only.
Variant = Tuple[str, List[str], Dict[str, str], str]


def opt(name: str, value: object) -> List[str]:
    return ["--option", f"{name}={value}"]


CONTROL = "control (A/A)"

VARIANTS: List[Variant] = [
    (CONTROL, [], {}, "identical settings on both sides: the noise floor"),
    ("no deadline", ["--timeout", "0"], {}, "call: timeout=None instead of 60 s"),
    ("wait_for_ready", ["--wait-for-ready"], {}, "call: wait_for_ready=True"),
    ("1 metadata pair", ["--metadata"], {}, "call: metadata=((name, value),), as an auth token"),
    ("compression=none", ["--compression", "none"], {}, "call: compression=NoCompression"),
    ("with_call", ["--call", "with_call"], {}, "call: .with_call() (returns the Call too)"),
    ("future().result()", ["--call", "future"], {}, "call: .future().result()"),
    ("handle per call", ["--call", "per-call-handle"], {}, "call: channel.unary_unary() on every call"),
    ("registered method", ["--registered"], {}, "handle: _registered_method=True (generated stubs do)"),
    ("grpc.aio", ["--call", "aio"], {}, "grpc.aio channel awaited from asyncio"),
    ("so_reuseport=0", opt("grpc.so_reuseport", 0), {}, "channel option"),
    ("enable_retries=0", opt("grpc.enable_retries", 0), {}, "channel option"),
    ("max_concurrent_streams=1", opt("grpc.max_concurrent_streams", 1), {}, "channel option"),
    ("http2.bdp_probe=0", opt("grpc.http2.bdp_probe", 0), {}, "channel option"),
    ("http2.max_frame_size=16M", opt("grpc.http2.max_frame_size", 16777215), {}, "channel option"),
    ("http2.write_buffer_size=1M", opt("grpc.http2.write_buffer_size", 1 << 20), {}, "channel option"),
    ("use_local_subchannel_pool", opt("grpc.use_local_subchannel_pool", 1), {}, "channel option"),
    ("default_compression=0", opt("grpc.default_compression_algorithm", 0), {}, "channel option"),
    ("enable_channelz=0", opt("grpc.enable_channelz", 0), {}, "channel option"),
    ("minimal_stack=1", opt("grpc.minimal_stack", 1), {}, "channel option"),
    ("enable_deadline_checking=0", opt("grpc.enable_deadline_checking", 0), {}, "channel option"),
    ("optimization_target=latency", opt("grpc.optimization_target", "latency"), {}, "channel option"),
    ("SingleThreadedUnaryStream", opt("SingleThreadedUnaryStream", 1), {},
     "grpc.experimental.ChannelOptions.SingleThreadedUnaryStream (unary-stream only)"),
    ("FORK_SUPPORT=0", [], {"GRPC_ENABLE_FORK_SUPPORT": "0"}, "env GRPC_ENABLE_FORK_SUPPORT"),
    ("FORK_SUPPORT=1", [], {"GRPC_ENABLE_FORK_SUPPORT": "1"}, "env GRPC_ENABLE_FORK_SUPPORT"),
    ("POLL_STRATEGY=poll", [], {"GRPC_POLL_STRATEGY": "poll"}, "env GRPC_POLL_STRATEGY"),
    ("combined", opt("grpc.enable_channelz", 0) + opt("grpc.minimal_stack", 1) + ["--registered"], {},
     "enable_channelz=0 + minimal_stack=1 + registered method"),
]

#: The metrics reported. Small sequential calls only: the 100k-key get is
#: dominated by moving 16 MB, and two 16 MB results alive in one A/B process
#: skew its figures (the A/A control moved by +-40% in a trial run).
WORKLOADS = ("put", "get")
METRICS = [("put", "cpu_us_per_op"), ("put", "wall_us_per_op"), ("get", "cpu_us_per_op"),
           ("get", "wall_us_per_op")]
#: In-process A/B reports these ratios instead (CPU and wall per op).
AB_METRICS = {"cpu_us_per_op": "ab_cpu_ratio", "wall_us_per_op": "ab_wall_ratio"}


def in_process(variant: Variant) -> bool:
    """Whether --ab can measure it: no environment, and not the asyncio API."""
    _, flags, env, _ = variant
    return not env and "aio" not in flags


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--endpoints", help="HOST:PORT of an etcd to use instead of starting one")
    parser.add_argument("--json", help="write the records and ratios here")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--blocks", type=int, default=20, help="alternating blocks per in-process A/B")
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    return parser.parse_args(argv)


def ratio(
    results: e2e.Results, name: str, workload: str, metric: str, ab: bool
) -> Tuple[Optional[float], str]:
    """Median variant/baseline over rounds, and the per-round values as text."""
    if ab:
        per_round = results.series(name, workload, AB_METRICS[metric])
    else:
        variant = results.series(name, workload, metric)
        base = results.series(f"baseline@{name}", workload, metric)
        per_round = {r: variant[r] / base[r] for r in variant if r in base and base[r]}
    values = [per_round[r] for r in sorted(per_round)]
    spread = " ".join(f"{(v - 1) * 100:+.0f}" for v in values)
    return (statistics.median(values) if values else None), spread


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.quick:
        params = e2e.Params(n=300, keys=0, range_repeats=0, rounds=1, worker_timeout=60, deadline=120)
    else:
        params = e2e.Params(n=3000, keys=0, range_repeats=0, rounds=3, worker_timeout=300, deadline=2400)
    if args.rounds:
        params.rounds = args.rounds
    spec = {s.name: s for s in e2e.own_clients()}[e2e.RAW]
    variants = [v for v in VARIANTS if not args.only or v[0] in args.only.split(",")]
    items = []
    for variant in variants:
        name, flags, env, _ = variant
        if in_process(variant):
            # The worker labels its two sides itself; keep only the variant side.
            items.append((name, spec, [*flags, "--ab", str(args.blocks)], env))
        else:
            items += [(f"baseline@{name}", spec, [], {}), (name, spec, flags, env)]
    results, failures = e2e.Results(), {}
    started, load_before = time.perf_counter(), e2e.loadavg()
    with e2e.Server(args.endpoints) as server:
        e2e.log(f"etcd {server.version} at {server.endpoint}; load average {load_before}")
        e2e.run_rounds(server.endpoint, items, params, WORKLOADS, results, failures)
        if args.endpoints:
            e2e.cleanup(server.endpoint)
        info = e2e.machine_info(server.version)
    info["load_before"], info["load_after"] = load_before, e2e.loadavg()
    # Every run with default settings: baseline processes and the A sides of A/B runs.
    baseline = [r for r in results.records if r["client"] == "raw-grpcio"]
    # An A/B process prints both sides under the variant's label: keep its B side.
    ab_names = {v[0] for v in variants if in_process(v)}
    results.records = [r for r in results.records
                       if not (r["label"] in ab_names and r["client"] == "raw-grpcio")]
    rows = [["baseline (absolute, median)", "-", "-",
             *(f"{statistics.median(r[m] for r in baseline if r['workload'] == w):.1f}"
               if any(r["workload"] == w for r in baseline) else "-" for w, m in METRICS)]]
    document: Dict[str, Dict[str, object]] = {}
    for variant in variants:
        name, _, _, what = variant
        ab = in_process(variant)
        row, document[name] = [name, what, "in-process A/B" if ab else "process pairs"], {}
        for workload, metric in METRICS:
            value, spread = ratio(results, name, workload, metric, ab)
            document[name][f"{workload}.{metric}"] = {"ratio": value, "per_round_percent": spread}
            row.append("-" if value is None else f"{(value - 1) * 100:+.1f}% ({spread})")
        rows.append(row)
    headings = ["variant", "what", "how", *(f"{w} {m}" for w, m in METRICS)]
    print(f"\nraw grpcio, {params.n} sequential puts and gets; change vs the "
          f"default settings, median of {params.rounds} round(s) (per-round values in brackets; "
          f"negative = cheaper/faster); load {info['load_before']} -> {info['load_after']}\n")
    print(e2e.render(headings, rows, args.markdown))
    for label, error in failures.items():
        print(f"\nFAILED {label}: {error}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        out = {"kind": "etcdfast-grpc-settings", "params": params.__dict__, "machine": info,
               "ratios": document, "failures": failures, "records": results.records}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
