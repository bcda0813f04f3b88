"""etcdfast.compat.etcd3 end to end: against etcdfast's native API and python-etcd3 itself, in one run.

    python bench/compat_e2e.py [--quick] [--rounds N] [--events N] [--json out.json] [--markdown]

One real etcd, the prefix-get keys preloaded once (bench/e2e.py's server,
preload and harness: the same workloads, timing loop and checks as every other
client there). Then, interleaved over the rounds (A B C, C B A, ...):

* put / get / 100k-key prefix get, each client in a fresh process:
  ``etcdfast`` (the native ``Client``), ``etcdfast-compat`` (python-etcd3's
  API on etcdfast, through ``get_response``/``get_prefix_response``, the raw
  answers), ``etcdfast-compat-typical`` (``get``/``get_prefix`` and their
  ``(value, KVMetadata)`` pairs, collected in a list as bench/e2e.py's
  typical rows do), ``etcdfast-compat-stream`` (the same pairs iterated
  without keeping them, prefix get only), and python-etcd3 0.12.0 the same
  three ways, in its venv with the pure-Python protobuf runtime it needs today;
* the native API and the compat layer in *one* process, in alternating blocks
  (workers/compat_ab_worker.py): the precise form of "what does the
  translation cost", on a machine whose load moves separate processes by
  10-20 %;
* watch throughput (bench/watch_e2e.py's writer and watcher): native,
  compat and python-etcd3, ``--events`` events per repetition.

The verdicts are the compat layer's client CPU over the native API's, target
<= 1.15 (put, get, prefix get from the A/B; watch per event across processes).
A missing python-etcd3 venv is skipped with the reason (bench/RESULTS.md, "The
peer venvs"). Exit status 1 if the native or the compat client failed to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import e2e  # noqa: E402 - bench/ is not a package
import watch_e2e  # noqa: E402

h = e2e.h
WORKERS = e2e.WORKERS
NATIVE, COMPAT = "etcdfast", "etcdfast-compat"
COMPAT_TYPICAL, COMPAT_STREAM = "etcdfast-compat-typical", "etcdfast-compat-stream"
PY_ETCD3, PY_ETCD3_TYPICAL, PY_ETCD3_STREAM = "python-etcd3", "python-etcd3-typical", "python-etcd3-stream"
AB, AB_TYPICAL = "A/B compat vs native", "A/B compat-typical vs native"
AB_STREAM = "A/B compat-stream vs native"
AB_ROWS = (AB, AB_TYPICAL, AB_STREAM)
PURE_PROTOBUF = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
TARGET = "<= 1.15"


def kv_clients(venvs: str) -> List[e2e.ClientSpec]:
    etcd3 = str(WORKERS / "etcd3_worker.py")
    compat = [etcd3, "--package", "etcdfast.compat.etcd3"]
    ab = [str(WORKERS / "compat_ab_worker.py"), "--blocks", "20"]
    python = f"{venvs}/etcd3/bin/python"
    etcd3_venv = ["--package", "etcd3"]
    only_range = ("range",)  # the stream variants differ from typical in the prefix get alone
    specs = [
        e2e.ClientSpec(NATIVE, sys.executable, [str(WORKERS / "etcdfast_worker.py")], package="etcdfast"),
        e2e.ClientSpec(COMPAT, sys.executable, compat, package="etcdfast"),
        e2e.ClientSpec(COMPAT_TYPICAL, sys.executable, [*compat, "--api", "typical"], package="etcdfast"),
        e2e.ClientSpec(COMPAT_STREAM, sys.executable, [*compat, "--api", "stream"], package="etcdfast",
                       workloads=only_range),
        e2e.ClientSpec(AB, sys.executable, ab, package="etcdfast"),
        e2e.ClientSpec(AB_TYPICAL, sys.executable, [*ab, "--api", "typical"], package="etcdfast"),
        e2e.ClientSpec(AB_STREAM, sys.executable, [*ab, "--api", "stream"], package="etcdfast",
                       workloads=only_range),
        e2e.ClientSpec(PY_ETCD3, python, [etcd3, *etcd3_venv], env=PURE_PROTOBUF, package="etcd3", venv=True),
        e2e.ClientSpec(PY_ETCD3_TYPICAL, python, [etcd3, *etcd3_venv, "--api", "typical"],
                       env=PURE_PROTOBUF, package="etcd3", venv=True),
        e2e.ClientSpec(PY_ETCD3_STREAM, python, [etcd3, *etcd3_venv, "--api", "stream"],
                       env=PURE_PROTOBUF, package="etcd3", venv=True, workloads=only_range),
    ]
    for spec in specs:
        if spec.venv and not Path(spec.python).exists():
            spec.skip = f"no venv at {venvs}/etcd3 (see bench/RESULTS.md, 'The peer venvs')"
    return specs


def watch_clients(venvs: str) -> List[watch_e2e.Client]:
    found: List[watch_e2e.Client] = [
        (NATIVE, sys.executable, {"ETCDFAST_PURE": ""}, ["--client", "etcdfast"]),
        (COMPAT, sys.executable, {"ETCDFAST_PURE": ""}, ["--client", "compat"]),
    ]
    python = Path(venvs) / "etcd3" / "bin" / "python"
    if python.exists():
        found.append((PY_ETCD3, str(python), {**PURE_PROTOBUF, "PYTHONPATH": ""}, ["--client", "etcd3"]))
    return found


def run_watch(endpoint: str, clients: List[watch_e2e.Client], reps: int, events: int,
              results: e2e.Results, failures: Dict[str, str]) -> None:
    for rep, client in e2e.interleaved(clients, reps):
        record = watch_e2e.run_one(client, endpoint, f"/compat-watch/{rep}/{client[0]}/", events)
        if record is None:
            failures.setdefault(f"{client[0]} watch", "the watcher failed (see stderr)")
            continue
        results.add(rep, client[0], [{"workload": "watch", **record}])
        e2e.log(f"  watch rep {rep + 1}: {client[0]} {record['cpu_us_per_event']:.2f} us CPU/event")


WATCH_COLUMNS: List[e2e.Column] = [
    ("watch events/s", "watch", "events_per_s", 1, "{:,.0f}"),
    ("watch CPU us/event", "watch", "cpu_us_per_event", 1, "{:.2f}"),
]


def checks(results: e2e.Results) -> List[e2e.Check]:
    out = []
    for workload, metric in (("put", "cpu_us_per_op"), ("get", "cpu_us_per_op"), ("range", "cpu_ns_per_key")):
        label = {"put": "put", "get": "get", "range": "prefix get, per key"}[workload]
        out.append(e2e.Check(f"{label}: client CPU, compat / native (in-process A/B)",
                             results.median(AB, workload, "ab_cpu_ratio"), TARGET))
        out.append(e2e.Check(f"{label}: client CPU, compat / native (separate processes)",
                             results.ratio(COMPAT, NATIVE, workload, metric)))
        out.append(e2e.Check(f"{label}: client CPU, compat-typical / native (in-process A/B)",
                             results.median(AB_TYPICAL, workload, "ab_cpu_ratio"), "",
                             "get/get_prefix: a (value, KVMetadata) pair per key"))
    out.append(e2e.Check("prefix get, per key: client CPU, compat-stream / native (in-process A/B)",
                         results.median(AB_STREAM, "range", "ab_cpu_ratio"), "",
                         "get_prefix iterated, the pairs not kept"))
    out.append(e2e.Check("watch: client CPU per event, compat / native (separate processes)",
                         results.ratio(COMPAT, NATIVE, "watch", "cpu_us_per_event"), TARGET))
    for workload, metric in (("put", "cpu_us_per_op"), ("get", "cpu_us_per_op"), ("range", "cpu_ns_per_key"),
                             ("watch", "cpu_us_per_event")):
        out.append(e2e.Check(f"{workload}: client CPU, python-etcd3 / compat",
                             results.ratio(PY_ETCD3, COMPAT, workload, metric)))
    for theirs, ours in ((PY_ETCD3_TYPICAL, COMPAT_TYPICAL), (PY_ETCD3_STREAM, COMPAT_STREAM)):
        out.append(e2e.Check(f"prefix get: client CPU, {theirs} / {ours}",
                             results.ratio(theirs, ours, "range", "cpu_ns_per_key")))
    return out


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts for CI smoke (< 60 s)")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 5, quick 1)")
    parser.add_argument("--events", type=int, default=0, help="watch events per repetition (default 50,000)")
    parser.add_argument("--venvs", default=e2e.DEFAULT_VENVS, help="directory holding the etcd3 venv")
    parser.add_argument("--part", choices=["all", "kv", "watch"], default="all",
                        help="run only the put/get/prefix-get part or only the watch part")
    parser.add_argument("--json", help="write every record, the checks and the machine here")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    params = e2e.Params.for_mode(argparse.Namespace(quick=args.quick, rounds=args.rounds or (1 if args.quick
                                                                                          else 5)))
    if not args.quick:
        # More timed prefix gets than e2e.py's 3: the A/B alternates them one
        # by one, and three pairs of 100k-key gets are too few for a median.
        params.range_repeats = 6
    events = args.events or (2_000 if args.quick else 50_000)
    started = time.perf_counter()
    clients = kv_clients(args.venvs)
    for spec in clients:
        e2e.probe(spec)
        if spec.skip:
            e2e.log(f"skipping {spec.name}: {spec.skip}")
    watchers = watch_clients(args.venvs)
    load_before = e2e.loadavg()
    results, failures = e2e.Results(), {}
    with e2e.Server(None) as server:
        e2e.log(f"etcd {server.version} at {server.endpoint}; load average {load_before}")
        if args.part in ("all", "kv"):
            seconds = e2e.preload(server.endpoint, params.keys)
            e2e.log(f"preloaded {params.keys:,} keys in {seconds:.1f} s")
            runnable = [c for c in clients if not c.skip]
            e2e.run_rounds(server.endpoint, [(c.name, c, [], {}) for c in runnable], params, h.WORKLOADS,
                           results, failures)
        if args.part in ("all", "watch"):
            run_watch(server.endpoint, watchers, params.rounds, events, results, failures)
        info = e2e.machine_info(server.version)
    info["load_before"], info["load_after"] = load_before, e2e.loadavg()

    headings = ["client"] + [c[0] for c in e2e.COLUMNS + WATCH_COLUMNS]
    rows = [row for row in e2e.table_rows(results, e2e.COLUMNS + WATCH_COLUMNS)
            if row[0] not in AB_ROWS]
    found = checks(results)
    print(f"\n{params.n} sequential puts and gets, one {params.keys:,}-key prefix get "
          f"(x{params.range_repeats}), {events:,} watch events; "
          f"median of {params.rounds} interleaved round(s); "
          f"load {info['load_before']} -> {info['load_after']}\n")
    print(e2e.render(headings, rows, args.markdown))
    print()
    print(e2e.render_checks(found, args.markdown))
    e2e.print_outcome({spec.name: spec.skip for spec in clients}, failures, started)
    if args.json:
        document: Dict[str, Any] = {
            "kind": "etcdfast-compat-e2e",
            "params": {**params.__dict__, "watch_events": events},
            "machine": info,
            "clients": {c.name: {"versions": c.versions, "skip": c.skip} for c in clients},
            "checks": [{**c.__dict__, "verdict": c.verdict()} for c in found],
            "failures": failures,
            "records": results.records,
        }
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    required = [NATIVE, COMPAT] + ([AB] if args.part != "watch" else [])
    return 1 if any(name in failures or name not in results.labels() for name in required) else 0


if __name__ == "__main__":
    sys.exit(main())
