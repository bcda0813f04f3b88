"""Distributed lock benchmark: etcdfast against raw grpcio, python-etcd3 and etcdctl.

    python bench/lock_e2e.py [--quick] [--json out.json] [--markdown]
                             [-n 2000] [-k 50] [--waiters 8] [--rounds 5] [--only NAME,...]

Starts one real etcd (etcdfast.testing.EtcdServer: data on tmpfs,
--unsafe-no-fsync on 3.5) and measures, in one run, side by side:

1. Uncontended lock+unlock cycles on one session (``-n`` cycles): client CPU
   per cycle (``time.process_time`` of the worker process, every thread) and
   wall per cycle (p50/p99), for etcdfast's sync ``Mutex`` (fast and pure
   twins), its ``AsyncMutex``, raw grpcio replaying Go's request sequence for
   one uncontended cycle (the acquire Txn and the unlock DeleteRange, bytes
   encoded once before timing, no serializers, nothing decoded: the floor the
   target "<= 1.2x raw grpcio's client CPU" is judged against), the same two
   alternating in one process (the precise form of that ratio, as in
   e2e.py), python-etcd3's ``Lock`` (acquire/release, in its venv), and
   ``etcdctl lock NAME -- true`` per acquisition (process included; context).
2. Contended hand-off: ``--waiters`` waiters, each with its own client and
   session, contend for one lock, each taking it ``-k`` times and holding it
   ``--hold`` s. For every hand-off: the time from the holder's ``unlock()``
   returning to the next holder's ``lock()`` returning (CLOCK_MONOTONIC,
   shared by every process of the machine); right before each contended
   run, the round trip of a plain sequential get (p50) in a fresh process,
   the unit of the "<= 2 round trips" target. etcdfast runs with the waiters
   as threads of one process and as one process each; python-etcd3 likewise
   (its Lock cannot wait with today's tenacity: the worker replays its loop,
   see workers/lock_worker.py); etcdctl as ``etcdctl lock NAME`` processes
   released by SIGINT (hand-off from the SIGINT: see the worker).

Reading the contended rows: a waiter watches its predecessor's key from the
revision of the Get that found it (Go's waitDelete does the same). etcd puts
a watcher whose start revision is not in the future in its "unsynced" group,
which it catches up every 100 ms, so a release that comes soon after the
waiter queued is seen up to 100 ms late: that is the ~75-105 ms p99 of
etcdfast and etcdctl alike, and what bounds their hand-offs per second.

Workers run in their own processes, interleaved over ``--rounds`` rounds
(A B C, C B A, ...); figures are medians over rounds, ratios medians of the
per-round ratios. A peer whose venv is missing is skipped with the reason.
Exit status: 0 when every etcdfast row and the raw grpcio floor ran; missed
targets are reported, not fatal (noisy figures on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BENCH = Path(__file__).resolve().parent
WORKERS = BENCH / "workers"
WORKER = WORKERS / "lock_worker.py"
sys.path[:0] = [str(BENCH), str(WORKERS)]

import _harness as h  # noqa: E402 - the workers' directory is not a package
import e2e  # noqa: E402 - shared reporting helpers (Check, render, loadavg...)

DEFAULT_VENVS = os.environ.get("BENCH_VENVS", "/tmp/bench-venvs")
ETCD3_ENV = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}  # see bench/RESULTS.md

# Uncontended rows.
FAST, PURE, ASYNC, RAW, AB, ETCD3, ETCDCTL = (
    "etcdfast-fast", "etcdfast-pure", "etcdfast-async", "raw-grpcio", "A/B fast vs raw",
    "python-etcd3", "etcdctl")
# Contended rows.
C_THREADS, C_PROCS, C_ETCD3_THREADS, C_ETCD3_PROCS, C_ETCDCTL = (
    "etcdfast threads", "etcdfast processes", "python-etcd3 threads", "python-etcd3 processes",
    "etcdctl processes")
REQUIRED = (FAST, PURE, ASYNC, RAW, AB, C_THREADS, C_PROCS)


@dataclass
class Params:
    n: int  # uncontended cycles per worker
    etcdctl_n: int  # uncontended etcdctl acquisitions
    k: int  # acquisitions per waiter
    etcdctl_k: int  # acquisitions per etcdctl waiter
    waiters: int
    hold: float
    rtt_n: int  # sequential gets for the round-trip unit
    rounds: int
    worker_timeout: float
    deadline: float  # seconds for all rounds of one part; later rounds are dropped

    @classmethod
    def for_mode(cls, args: argparse.Namespace) -> "Params":
        if args.quick:
            params = cls(n=100, etcdctl_n=3, k=5, etcdctl_k=2, waiters=4, hold=args.hold, rtt_n=100,
                         rounds=1, worker_timeout=60, deadline=120)
        else:
            params = cls(n=2000, etcdctl_n=50, k=50, etcdctl_k=10, waiters=8, hold=args.hold, rtt_n=500,
                         rounds=5, worker_timeout=600, deadline=1800)
        for name in ("n", "k", "waiters", "rounds"):
            if getattr(args, name):
                setattr(params, name, getattr(args, name))
        return params


@dataclass
class Item:
    """One row: how to start its worker(s), or why it cannot run here."""

    label: str
    python: str
    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)
    venv: bool = False
    processes: int = 0  # contended rows: >0 = that many one-waiter processes
    skip: str = ""

    def environ(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("ETCDFAST_PURE", None)
        if self.venv:
            env.pop("PYTHONPATH", None)
        env.update(self.env)
        return env

    def command(self, mode: str, endpoint: str, name: str, extra: Sequence[str]) -> List[str]:
        return [self.python, str(WORKER), mode, *self.argv, "--endpoint", endpoint, "--name", name, *extra]


def items(venvs: str, etcdctl: str) -> List[Item]:
    py = sys.executable
    etcd3_python = os.path.join(venvs, "etcd3", "bin", "python")
    etcd3_skip = "" if os.access(etcd3_python, os.X_OK) else f"no venv at {os.path.join(venvs, 'etcd3')}"
    ctl_skip = "" if os.access(etcdctl, os.X_OK) else f"no etcdctl at {etcdctl}"
    found = [
        Item(FAST, py, ["--client", "etcdfast"]),
        Item(PURE, py, ["--client", "etcdfast"], env={"ETCDFAST_PURE": "1"}),
        Item(ASYNC, py, ["--client", "etcdfast-async"]),
        Item(RAW, py, ["--client", "raw"]),
        Item(AB, py, ["--client", "ab"]),
        Item(ETCD3, etcd3_python, ["--client", "etcd3"], env=ETCD3_ENV, venv=True, skip=etcd3_skip),
        Item(ETCDCTL, py, ["--client", "etcdctl", "--etcdctl", etcdctl], skip=ctl_skip),
        Item(C_THREADS, py, ["--client", "etcdfast"]),
        Item(C_PROCS, py, ["--client", "etcdfast"], processes=1),
        Item(C_ETCD3_THREADS, etcd3_python, ["--client", "etcd3"], env=ETCD3_ENV, venv=True, skip=etcd3_skip),
        Item(C_ETCD3_PROCS, etcd3_python, ["--client", "etcd3"], env=ETCD3_ENV, venv=True,
             processes=1, skip=etcd3_skip),
        Item(C_ETCDCTL, py, ["--client", "etcdctl", "--etcdctl", etcdctl], skip=ctl_skip),
    ]
    if not etcd3_skip:
        _, why = e2e.import_versions(etcd3_python, "etcd3", "etcd3", found[5].environ())
        for item in found:
            if item.python == etcd3_python:
                item.skip = why
    return found


UNCONTENDED = (FAST, PURE, ASYNC, RAW, AB, ETCD3, ETCDCTL)


# -- running ----------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def json_lines(text: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_cycles(item: Item, endpoint: str, name: str, params: Params) -> List[Dict[str, Any]]:
    n = params.etcdctl_n if item.label == ETCDCTL else params.n
    extra = ["-n", str(n), "--warmup", str(min(50, n))]
    done = subprocess.run(item.command("cycles", endpoint, name, extra), env=item.environ(),
                          capture_output=True, text=True, timeout=params.worker_timeout, cwd=str(WORKERS))
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {e2e.last_line(done.stderr)}")
    return json_lines(done.stdout)


def run_rtt(endpoint: str, params: Params) -> Dict[str, Any]:
    env = dict(os.environ)
    env.pop("ETCDFAST_PURE", None)
    command = [sys.executable, str(WORKER), "rtt", "--endpoint", endpoint, "-n", str(params.rtt_n)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=params.worker_timeout,
                          cwd=str(WORKERS), check=True)
    return json_lines(done.stdout)[-1]


def run_contention(item: Item, endpoint: str, name: str, params: Params) -> Dict[str, Any]:
    """The waiters of one contended run: threads of one worker, or one worker each."""
    k = params.etcdctl_k if item.label == C_ETCDCTL else params.k
    extra = ["-k", str(k), "--hold", str(params.hold)]
    if not item.processes:
        command = item.command("contend", endpoint, name, [*extra, "--waiters", str(params.waiters)])
        done = subprocess.run(command, env=item.environ(), capture_output=True, text=True,
                              timeout=params.worker_timeout, cwd=str(WORKERS))
        outputs = [(done.returncode, done.stdout, done.stderr)]
    else:
        command = item.command("contend", endpoint, name, [*extra, "--waiters", "1", "--sync"])
        pipe = subprocess.PIPE
        workers = [subprocess.Popen(command, env=item.environ(), stdin=pipe, stdout=pipe, stderr=pipe,
                                    text=True, cwd=str(WORKERS))
                   for _ in range(params.waiters)]
        try:
            for worker in workers:  # every waiter connected, then all start together
                assert worker.stdout is not None
                line = worker.stdout.readline()
                if line.strip() != "ready":
                    raise RuntimeError(f"a waiter did not start: {line!r} "
                                       f"{e2e.last_line(worker.communicate(timeout=30)[1])}")
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            outputs = []
            for worker in workers:
                out, err = worker.communicate(timeout=params.worker_timeout)
                outputs.append((worker.returncode, out, err))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
    holds: List[Dict[str, float]] = []
    cpu = retries = 0.0
    for waiter, (code, out, err) in enumerate(outputs):
        records = json_lines(out)
        if code != 0 or not records:
            errors = records[-1]["errors"] if records else []
            raise RuntimeError(f"exit {code}: {errors[:1] or e2e.last_line(err)}")
        for hold in records[-1]["holds"]:
            hold["waiter"] += waiter * 1000  # distinct per process
        holds.extend(records[-1]["holds"])
        cpu += records[-1]["cpu_s"] + records[-1].get("child_cpu_s", 0.0)
        retries += records[-1]["retries"]
    return {**handoffs(holds), "cpu_ms_per_acquisition": cpu / len(holds) * 1e3, "retries": retries}


def handoffs(holds: List[Dict[str, float]]) -> Dict[str, Any]:
    """Hand-off figures: holds in order of acquisition, each from the previous release."""
    ordered = sorted(holds, key=lambda hold: hold["acquired"])
    gaps = [b["acquired"] - a["released"] for a, b in zip(ordered, ordered[1:])]
    span = ordered[-1]["acquired"] - ordered[0]["acquired"]
    # Two holds whose [acquired, released] overlap on our clocks: the server
    # orders them (a key is deleted before the next waiter's Get sees it);
    # an overlap means the releasing thread returned late (GIL, scheduling).
    overlaps = sum(1 for a, b in zip(ordered, ordered[1:]) if b["acquired"] < a["released"])
    return {
        "acquisitions": len(ordered),
        "handoff_p50_us": h.percentile(gaps, 0.50) * 1e6,
        "handoff_p90_us": h.percentile(gaps, 0.90) * 1e6,
        "handoff_p99_us": h.percentile(gaps, 0.99) * 1e6,
        "handoff_min_us": min(gaps) * 1e6,
        "handoff_max_us": max(gaps) * 1e6,
        "handoffs_per_s": len(gaps) / span if span > 0 else 0.0,
        "overlaps": overlaps,
        "same_waiter_twice": sum(1 for a, b in zip(ordered, ordered[1:]) if a["waiter"] == b["waiter"]),
    }


class Results:
    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []

    def add(self, round_no: int, label: str, record: Dict[str, Any]) -> None:
        self.records.append({**record, "round": round_no, "label": label})

    def series(self, label: str, metric: str, client: Optional[str] = None) -> Dict[int, float]:
        return {r["round"]: r[metric] for r in self.records
                if r["label"] == label and metric in r and (client is None or r.get("client") == client)}

    def median(self, label: str, metric: str, client: Optional[str] = None) -> Optional[float]:
        values = list(self.series(label, metric, client).values())
        return statistics.median(values) if values else None

    def ratio(self, a: str, b: str, metric: str) -> Optional[float]:
        sa, sb = self.series(a, metric), self.series(b, metric)
        pairs = [sa[r] / sb[r] for r in sa if r in sb and sb[r]]
        return statistics.median(pairs) if pairs else None


def run_part(part: str, todo: Sequence[Item], endpoint: str, params: Params, results: Results,
             failures: Dict[str, str]) -> None:
    deadline = time.monotonic() + params.deadline
    for round_no, item in e2e.interleaved(todo, params.rounds):
        if time.monotonic() > deadline:
            log(f"{part}: time budget of {params.deadline:.0f} s spent: stopping before round {round_no + 1}")
            break
        if item.label in failures:
            continue
        name = f"/bench/lock/{part}-{round_no}-{item.label.replace(' ', '-').replace('/', '')}"
        started = time.perf_counter()
        try:
            if part == "cycles":
                for record in run_cycles(item, endpoint, name, params):
                    results.add(round_no, item.label, record)
                note = ""
            else:
                unit = run_rtt(endpoint, params)
                record = run_contention(item, endpoint, name, params)
                record.update(rtt_p50_us=unit["p50_us"], rtt_raw_p50_us=unit["raw_p50_us"],
                              handoff_p50_rtt=record["handoff_p50_us"] / unit["p50_us"],
                              handoff_p99_rtt=record["handoff_p99_us"] / unit["p50_us"])
                results.add(round_no, item.label, record)
                note = (f": hand-off p50 {record['handoff_p50_us']:.0f} us = "
                        f"{record['handoff_p50_rtt']:.2f} rtt (rtt p50 {unit['p50_us']:.0f} us)")
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
            failures[item.label] = str(exc)
            log(f"  round {round_no + 1}: {item.label} FAILED: {exc}")
            continue
        log(f"  round {round_no + 1}: {item.label} done in {time.perf_counter() - started:.1f} s{note}")


# -- reporting --------------------------------------------------------------------


def cycle_rows(results: Results) -> List[List[str]]:
    rows = []
    for label in UNCONTENDED:
        if label == AB:
            for client in (RAW, FAST):
                cpu = results.median(label, "cpu_us_per_op", client)
                if cpu is None:
                    continue
                rows.append([f"{client} (A/B, one process)", f"{cpu:.0f}", "-",
                             f"{results.median(label, 'p50_us', client):.0f}",
                             f"{results.median(label, 'p99_us', client):.0f}",
                             f"{results.median(label, 'ops_per_s', client):,.0f}"])
            continue
        cpu = results.median(label, "cpu_us_per_op")
        if cpu is None:
            continue
        child = results.median(label, "child_cpu_us_per_op") or 0.0
        rows.append([label, f"{cpu:.0f}", f"{child:.0f}" if child else "-",
                     f"{results.median(label, 'p50_us'):.0f}", f"{results.median(label, 'p99_us'):.0f}",
                     f"{results.median(label, 'ops_per_s'):,.0f}"])
    return rows


CYCLE_HEADINGS = ["uncontended lock+unlock", "CPU us/cycle", "child CPU us", "wall p50 us",
                  "wall p99 us", "cycles/s"]
CONTENTION_HEADINGS = ["contended (hand-off)", "p50 us", "p99 us", "p50 rtt", "p99 rtt", "hand-offs/s",
                       "rtt p50 us", "CPU ms/acq", "overlaps", "retries"]


def contention_rows(results: Results) -> List[List[str]]:
    rows = []
    for label in (C_THREADS, C_PROCS, C_ETCD3_THREADS, C_ETCD3_PROCS, C_ETCDCTL):
        if results.median(label, "handoff_p50_us") is None:
            continue

        def m(metric: str, fmt: str, label: str = label) -> str:
            value = results.median(label, metric)
            return "-" if value is None else fmt.format(value)

        rows.append([label, m("handoff_p50_us", "{:.0f}"), m("handoff_p99_us", "{:.0f}"),
                     m("handoff_p50_rtt", "{:.2f}"), m("handoff_p99_rtt", "{:.1f}"),
                     m("handoffs_per_s", "{:.0f}"), m("rtt_p50_us", "{:.0f}"),
                     m("cpu_ms_per_acquisition", "{:.2f}"), m("overlaps", "{:.0f}"), m("retries", "{:.0f}")])
    return rows


def checks(results: Results) -> List[e2e.Check]:
    out = [
        e2e.Check("uncontended: client CPU/cycle, etcdfast fast / raw grpcio (separate processes)",
                  results.ratio(FAST, RAW, "cpu_us_per_op"), "<= 1.2"),
        e2e.Check("uncontended: client CPU/cycle, etcdfast fast / raw grpcio (in-process A/B)",
                  results.median(AB, "ab_cpu_ratio", FAST), "<= 1.2"),
        e2e.Check("uncontended: client CPU/cycle, etcdfast pure / raw grpcio",
                  results.ratio(PURE, RAW, "cpu_us_per_op")),
        e2e.Check("uncontended: client CPU/cycle, etcdfast async / raw grpcio",
                  results.ratio(ASYNC, RAW, "cpu_us_per_op")),
        e2e.Check("uncontended: client CPU/cycle, python-etcd3 / etcdfast fast",
                  results.ratio(ETCD3, FAST, "cpu_us_per_op")),
        e2e.Check("uncontended: wall/cycle p50, etcdfast fast / raw grpcio",
                  results.ratio(FAST, RAW, "p50_us")),
    ]
    for label in (C_PROCS, C_THREADS):
        out.append(e2e.Check(f"contended: hand-off p50 in get round trips, {label}",
                             results.median(label, "handoff_p50_rtt"), "<= 2"))
    for label in (C_ETCD3_PROCS, C_ETCD3_THREADS, C_ETCDCTL):
        value = results.median(label, "handoff_p50_rtt")
        if value is not None:
            out.append(e2e.Check(f"contended: hand-off p50 in get round trips, {label}", value))
    return out


def source_state() -> Dict[str, str]:
    """Which etcdfast was measured: HEAD and a digest of the working tree's
    src/ (read-only: no git command that could touch the index)."""
    import hashlib

    root = BENCH.parent
    state = {"head": "?", "src_sha256": "?"}
    try:
        state["head"] = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        pass
    digest = hashlib.sha256()
    for path in sorted((root / "src").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    state["src_sha256"] = digest.hexdigest()[:12]
    return state


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts for CI smoke")
    parser.add_argument("--json", help="write every record, the medians and the checks here")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("-n", type=int, default=0, help="uncontended cycles per worker (default 2000)")
    parser.add_argument("-k", type=int, default=0, help="acquisitions per waiter (default 50)")
    parser.add_argument("--waiters", type=int, default=0, help="contending waiters (default 8)")
    parser.add_argument("--hold", type=float, default=0.001, help="seconds each contended hold lasts")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 5; quick 1)")
    parser.add_argument("--venvs", default=DEFAULT_VENVS, help="directory holding the peers' venvs")
    parser.add_argument("--only", help="comma-separated row labels to run (default: all)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from etcdfast.testing import EtcdServer

    args = parse_args(argv)
    params = Params.for_mode(args)
    started = time.perf_counter()
    load_before, source = e2e.loadavg(), source_state()
    results, failures = Results(), {}  # type: Results, Dict[str, str]
    with EtcdServer() as server:
        version = ".".join(map(str, server.version))
        etcdctl = os.path.join(os.path.dirname(server.binary), "etcdctl")
        todo = items(args.venvs, etcdctl)
        if args.quick:  # one etcd3 contention mode is enough for a smoke run
            todo = [item for item in todo if item.label != C_ETCD3_PROCS]
        if args.only:
            wanted = set(args.only.split(","))
            todo = [item for item in todo if item.label in wanted]
        for item in todo:
            if item.skip:
                log(f"skipping {item.label}: {item.skip}")
        runnable = [item for item in todo if not item.skip]
        log(f"etcd {version} at {server.endpoint}; load average {load_before}")
        cycles = [item for item in runnable if item.label in UNCONTENDED]
        contended = [item for item in runnable if item.label not in UNCONTENDED]
        log(f"uncontended: {params.rounds} round(s) of {', '.join(i.label for i in cycles)}")
        run_part("cycles", cycles, server.endpoint, params, results, failures)
        log(f"contended: {params.rounds} round(s) of {', '.join(i.label for i in contended)}")
        run_part("contend", contended, server.endpoint, params, results, failures)
        info = e2e.machine_info(version)
    info["load_before"], info["load_after"] = load_before, e2e.loadavg()
    info.update(source)
    if source_state() != source:
        info["src_sha256"] += " (src changed during the run!)"
    wrong = [r for r in results.records if r["label"] == FAST and r.get("client") != FAST]
    if wrong:
        failures[FAST] = f"the Cython twin is not built: the 'fast' worker ran {wrong[0].get('client')}"

    found = checks(results)
    print(f"\netcd {version}; {params.n} uncontended cycles per worker ({params.etcdctl_n} for etcdctl); "
          f"{params.waiters} waiters x {params.k} holds of {params.hold * 1e3:g} ms "
          f"({params.etcdctl_k} for etcdctl); median of {params.rounds} interleaved round(s); "
          f"load {info['load_before']} -> {info['load_after']}; etcdfast {info['head']} "
          f"(src sha256 {info['src_sha256']})\n")
    print(e2e.render(CYCLE_HEADINGS, cycle_rows(results), args.markdown))
    print()
    print(e2e.render(CONTENTION_HEADINGS, contention_rows(results), args.markdown))
    print()
    print(e2e.render_checks(found, args.markdown))
    e2e.print_outcome({item.label: item.skip for item in todo}, failures, started)

    if args.json:
        medians = {}
        for label in dict.fromkeys(r["label"] for r in results.records):
            metrics = {k for r in results.records if r["label"] == label
                       for k, v in r.items() if isinstance(v, (int, float)) and k not in ("round", "pid")}
            medians[label] = {metric: results.median(label, metric) for metric in sorted(metrics)}
        document = {
            "kind": "etcdfast-lock-e2e",
            "params": params.__dict__,
            "machine": info,
            "medians": medians,
            "checks": [{**c.__dict__, "verdict": c.verdict()} for c in found],
            "skipped": {item.label: item.skip for item in todo if item.skip},
            "failures": failures,
            "records": results.records,
        }
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    wanted_required = [label for label in REQUIRED if any(item.label == label for item in todo)]
    ran = {r["label"] for r in results.records}
    return 1 if any(label in failures or label not in ran for label in wanted_required) else 0


if __name__ == "__main__":
    sys.exit(main())
