"""End-to-end benchmark: etcdfast against raw grpcio and the other Python clients.

    python bench/e2e.py [--quick] [--endpoints HOST:PORT] [--json out.json] [--markdown]

Starts one real etcd (etcdfast.testing.EtcdServer, data on tmpfs) unless
``--endpoints`` names one, preloads the keys for the prefix get once, then
runs every client's worker (bench/workers/) in its own process -- the peers
with their own virtualenv's Python -- several rounds, alternating the order
(A B C, C B A, ...) so that machine noise lands on every client alike. Each
figure is the median over the rounds; each ratio is the median of the
per-round ratios, i.e. of pairs measured minutes apart at most. Each round
also runs etcdfast and raw grpcio alternating inside one process
(workers/ab_worker.py), the precise form of the per-call CPU comparison on
a machine shared with other jobs.

A client whose virtualenv is missing is skipped with the reason printed, so
the script runs on a fresh machine; bench/RESULTS.md says how to create them.
Exit status: 0 when etcdfast (both twins) and the raw grpcio baseline ran,
1 otherwise. Missed targets are reported, not fatal: they are noisy figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

BENCH = Path(__file__).resolve().parent
WORKERS = BENCH / "workers"
sys.path.insert(0, str(WORKERS))

import _harness as h  # noqa: E402 - the workers' directory is not a package

DEFAULT_VENVS = os.environ.get("BENCH_VENVS", "/tmp/bench-venvs")
FAST, PURE, RAW = "etcdfast-fast", "etcdfast-pure", "raw-grpcio"
ASYNC, RAW_AIO = "etcdfast-async-fast", "raw-grpcio-aio"
AB_FAST, AB_PURE = "A/B etcdfast-fast vs raw", "A/B etcdfast-pure vs raw"
AB_ASYNC = "A/B etcdfast-async vs raw aio"
AB = (AB_FAST, AB_PURE, AB_ASYNC)
OWN = (FAST, PURE, RAW, ASYNC, RAW_AIO, *AB)
#: The sequential workloads: all that the context-only rows (pure twin, typical APIs) run.
SEQUENTIAL = ("put", "get", "range")

Record = Dict[str, Any]


# -- what to run ----------------------------------------------------------------


@dataclass
class Params:
    n: int  # sequential puts, and sequential gets
    keys: int  # keys under the range prefix
    range_repeats: int  # timed prefix gets per worker run
    rounds: int  # interleaved repetitions of every client
    worker_timeout: float  # seconds one worker process may take
    deadline: float  # seconds for all rounds; later rounds are dropped

    concurrent_ops: int = 8000  # gets per threads/tasks workload, all callers together
    threads: int = 16
    tasks: int = 200

    @classmethod
    def for_mode(cls, args: argparse.Namespace) -> "Params":
        if args.quick:
            # CI smoke: every code path, small counts, about a minute.
            params = cls(n=300, keys=10_000, range_repeats=1, rounds=2, worker_timeout=30, deadline=60,
                         concurrent_ops=400)
        else:
            params = cls(n=5000, keys=100_000, range_repeats=3, rounds=5, worker_timeout=600, deadline=3000)
        if args.rounds:
            params.rounds = args.rounds
        return params


@dataclass
class ClientSpec:
    """One client: how to start its worker, or why it cannot run here."""

    name: str
    python: str
    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)
    package: str = ""  # distribution whose version is reported
    venv: bool = False  # runs in a peer venv: our PYTHONPATH must not leak in
    skip: str = ""  # non-empty: the reason it does not run
    versions: Dict[str, str] = field(default_factory=dict)
    workloads: Tuple[str, ...] = ()  # when it runs only some of the workloads

    def command(
        self, endpoint: str, params: Params, workloads: Sequence[str], extra: Sequence[str]
    ) -> List[str]:
        return [
            self.python, *self.argv, *workloads, "--endpoint", endpoint, "-n", str(params.n),
            "--keys", str(params.keys), "--range-repeats", str(params.range_repeats),
            "--concurrent-ops", str(params.concurrent_ops), "--threads", str(params.threads),
            "--tasks", str(params.tasks), *extra,
        ]

    def environ(self, extra_env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("ETCDFAST_PURE", None)
        if self.venv:
            env.pop("PYTHONPATH", None)
        env.update(self.env)
        env.update(extra_env or {})
        return env


def own_clients() -> List[ClientSpec]:
    worker, raw = str(WORKERS / "etcdfast_worker.py"), str(WORKERS / "raw_grpc_worker.py")
    return [
        ClientSpec(FAST, sys.executable, [worker], package="etcdfast", workloads=h.SYNC_WORKLOADS),
        ClientSpec(PURE, sys.executable, [worker], env={"ETCDFAST_PURE": "1"}, package="etcdfast",
                   workloads=SEQUENTIAL),
        ClientSpec(RAW, sys.executable, [raw], package="grpcio", workloads=h.SYNC_WORKLOADS),
        ClientSpec(ASYNC, sys.executable, [worker, "--async"], package="etcdfast",
                   workloads=h.ASYNC_WORKLOADS),
        ClientSpec(RAW_AIO, sys.executable, [raw, "--call", "aio"], package="grpcio",
                   workloads=h.ASYNC_WORKLOADS),
    ]


def ab_clients() -> List[ClientSpec]:
    """etcdfast and raw grpcio (grpc.aio for the AsyncClient) alternating inside
    one process: the precise form of the "<= 1.05x raw grpcio per call"
    comparison (see workers/ab_worker.py)."""
    worker = [str(WORKERS / "ab_worker.py"), "--blocks", "20"]
    return [
        ClientSpec(AB_FAST, sys.executable, worker, package="etcdfast", workloads=("put", "get")),
        ClientSpec(AB_PURE, sys.executable, worker, env={"ETCDFAST_PURE": "1"}, package="etcdfast",
                   workloads=("put", "get")),
        ClientSpec(AB_ASYNC, sys.executable, [*worker, "--async"], package="etcdfast",
                   workloads=("put", "get")),
    ]


def peer_clients(venvs: str) -> List[ClientSpec]:
    etcd3, aetcd = str(WORKERS / "etcd3_worker.py"), str(WORKERS / "aetcd_worker.py")
    typical = ["--api", "typical"]
    peers = [
        # (name, venv directory, worker argv, distribution, environment, workloads)
        ("aetcd", "aetcd", [aetcd], "aetcd", {}, h.ASYNC_WORKLOADS),
        ("etcd-sdk-python", "etcd-sdk-python", [etcd3, "--package", "pyetcd"], "etcd-sdk-python", {},
         h.SYNC_WORKLOADS),
        # 0.12.0's generated code needs the pure-Python protobuf runtime today.
        ("python-etcd3", "etcd3", [etcd3, "--package", "etcd3"], "etcd3",
         {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}, h.SYNC_WORKLOADS),
        # The same clients through their documented result APIs, for context:
        # what most code written against them pays.
        ("aetcd-typical", "aetcd", [aetcd, *typical], "aetcd", {}, SEQUENTIAL),
        ("etcd-sdk-python-typical", "etcd-sdk-python", [etcd3, "--package", "pyetcd", *typical],
         "etcd-sdk-python", {}, SEQUENTIAL),
    ]
    specs = []
    for name, venv, argv, package, env, workloads in peers:
        python = os.path.join(venvs, venv, "bin", "python")
        spec = ClientSpec(name, python, argv, env=env, package=package, venv=True, workloads=workloads)
        if not os.access(python, os.X_OK):
            spec.skip = f"no venv at {os.path.join(venvs, venv)} (see bench/RESULTS.md)"
        specs.append(spec)
    return specs


_VERSIONS = """
import importlib.metadata as m, json, sys
from google.protobuf.internal import api_implementation
import {module}
out = {{"python": sys.version.split()[0], "protobuf-impl": api_implementation.Type()}}
for dist in ("{dist}", "grpcio", "protobuf"):
    try:
        out[dist] = m.version(dist)
    except m.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def import_versions(python: str, module: str, dist: str, env: Dict[str, str]) -> Tuple[Dict[str, str], str]:
    """Import ``module`` in the interpreter ``python`` (a peer's own venv, say).

    Returns the versions for the report and ``""``, or ``{}`` and why the
    client cannot run -- the reason a benchmark prints when it skips it.
    """
    try:
        done = subprocess.run(
            [python, "-c", _VERSIONS.format(module=module, dist=dist)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {}, f"cannot start {python}: {exc}"
    if done.returncode != 0:
        return {}, f"`import {module}` fails: {last_line(done.stderr)}"
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


def probe(spec: ClientSpec) -> None:
    """Import the client in its own interpreter: versions for the report, or a skip reason."""
    if not spec.skip:
        module = {"etcd-sdk-python": "pyetcd", "grpcio": "grpc"}.get(spec.package, spec.package)
        spec.versions, spec.skip = import_versions(spec.python, module, spec.package, spec.environ())


def last_line(text: str) -> str:
    """The telling line of a traceback: grpc's status details, else the last real line."""
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) > 1]
    details = [line for line in lines if line.startswith("details = ")]
    return (details or lines or ["(no output)"])[-1]


# -- running ----------------------------------------------------------------------


def run_worker(
    spec: ClientSpec,
    endpoint: str,
    params: Params,
    workloads: Sequence[str] = h.WORKLOADS,
    extra: Sequence[str] = (),
    extra_env: Optional[Dict[str, str]] = None,
) -> Tuple[List[Record], str]:
    """Run one worker process; returns its JSON records and, on failure, why."""
    command = spec.command(endpoint, params, spec.workloads or workloads, extra)
    try:
        done = subprocess.run(
            command, env=spec.environ(extra_env), capture_output=True, text=True,
            timeout=params.worker_timeout, check=False, cwd=str(WORKERS),
        )
    except subprocess.TimeoutExpired:
        return [], f"timed out after {params.worker_timeout:.0f} s"
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        return records, f"exit {done.returncode}: {last_line(done.stderr)}"
    return records, ""


def interleaved(items: Sequence[Any], rounds: int) -> Iterator[Tuple[int, Any]]:
    """(round, item) in A B C, C B A, A B C ... order: each item's average
    position is the same, so a slow drift of the machine favours nobody."""
    for r in range(rounds):
        for item in (items if r % 2 == 0 else list(reversed(items))):
            yield r, item


class Results:
    """Every record of the run, by (client, workload) and round."""

    def __init__(self) -> None:
        self.records: List[Record] = []

    def add(self, round_no: int, label: str, records: List[Record]) -> None:
        for record in records:
            record["round"], record["label"] = round_no, label
            self.records.append(record)

    def series(self, label: str, workload: str, metric: str) -> Dict[int, float]:
        return {r["round"]: r[metric] for r in self.records
                if r["label"] == label and r["workload"] == workload and metric in r}

    def median(self, label: str, workload: str, metric: str) -> Optional[float]:
        values = list(self.series(label, workload, metric).values())
        return statistics.median(values) if values else None

    def ratio(self, a: str, b: str, workload: str, metric: str) -> Optional[float]:
        """Median over rounds of a/b, pairing the two runs of the same round."""
        sa, sb = self.series(a, workload, metric), self.series(b, workload, metric)
        pairs = [sa[r] / sb[r] for r in sa if r in sb and sb[r]]
        return statistics.median(pairs) if pairs else None

    def labels(self) -> List[str]:
        return list(dict.fromkeys(r["label"] for r in self.records))


# -- reporting --------------------------------------------------------------------

Column = Tuple[str, str, str, float, str]

COLUMNS: List[Column] = [
    # (heading, workload, metric, scale, format); "range" is one prefix get of all the keys.
    ("put ops/s", "put", "ops_per_s", 1, "{:,.0f}"),
    ("put p50 us", "put", "p50_us", 1, "{:.0f}"),
    ("put p99 us", "put", "p99_us", 1, "{:.0f}"),
    ("put CPU us/op", "put", "cpu_us_per_op", 1, "{:.1f}"),
    ("get ops/s", "get", "ops_per_s", 1, "{:,.0f}"),
    ("get p50 us", "get", "p50_us", 1, "{:.0f}"),
    ("get p99 us", "get", "p99_us", 1, "{:.0f}"),
    ("get CPU us/op", "get", "cpu_us_per_op", 1, "{:.1f}"),
    ("range wall ms", "range", "wall_us_per_op", 1e-3, "{:.0f}"),
    ("range CPU ms", "range", "cpu_us_per_op", 1e-3, "{:.0f}"),
    ("range CPU ns/key", "range", "cpu_ns_per_key", 1, "{:.0f}"),
    ("held result MB", "mem", "held_mb", 1, "{:.1f}"),
    ("get's peak MB", "mem", "peak_mb", 1, "{:.1f}"),
]

#: Many callers sharing one client: threads (sync clients), asyncio tasks (async ones).
CONCURRENT_COLUMNS: List[Column] = [
    (f"{kind} {heading}", kind, metric, 1, fmt)
    for kind in ("threads", "tasks")
    for heading, metric, fmt in (("ops/s", "ops_per_s", "{:,.0f}"), ("p50 us", "p50_us", "{:.0f}"),
                                 ("p99 us", "p99_us", "{:.0f}"), ("CPU us/op", "cpu_us_per_op", "{:.1f}"))
]


def table_rows(results: Results, columns: Sequence[Column]) -> List[List[str]]:
    rows = []
    for label in results.labels():
        if label in AB:
            continue  # two clients in one process: reported as ratios only
        if all(results.median(label, w, m) is None for _, w, m, _, _ in columns):
            continue  # ran none of these workloads
        row = [label]
        for _, workload, metric, scale, fmt in columns:
            value = results.median(label, workload, metric)
            row.append("-" if value is None else fmt.format(value * scale))
        rows.append(row)
    return rows


def render(headings: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headings) + " |", "|" + "|".join("---" for _ in headings) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(headings, *rows)]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in [headings, *rows])


@dataclass
class Check:
    """One figure of the run, with the issue's target when it has one."""

    what: str
    value: Optional[float]
    target: str = ""  # e.g. "<= 1.1"
    detail: str = ""

    def verdict(self) -> str:
        if not self.target:
            return ""
        if self.value is None:
            return "not measured"
        op, limit = self.target.split()
        ok = self.value <= float(limit) if op == "<=" else self.value >= float(limit)
        if ok:
            return "met"
        return f"missed by {abs(self.value / float(limit) - 1) * 100:.0f}%"


def best(
    results: Results, labels: Sequence[str], workload: str, metric: str, lowest: bool = True
) -> Optional[str]:
    """The label with the lowest (or highest) median of ``metric``, among those that have one."""
    found = [(v, label) for label in labels if (v := results.median(label, workload, metric)) is not None]
    if not found:
        return None
    return (min(found) if lowest else max(found))[1]


def checks(results: Results) -> List[Check]:
    out = []
    for workload in ("put", "get"):
        out.append(Check(f"{workload}: client CPU/op, etcdfast fast / raw grpcio (separate processes)",
                         results.ratio(FAST, RAW, workload, "cpu_us_per_op"), "<= 1.1"))
        out.append(Check(f"{workload}: client CPU/op, etcdfast fast / raw grpcio (in-process A/B)",
                         results.median(AB_FAST, workload, "ab_cpu_ratio"), "<= 1.05"))
    out.append(Check("prefix get: etcdfast fast client CPU ns/key",
                     results.median(FAST, "range", "cpu_ns_per_key"), "<= 400"))
    # python-etcd3 runs on the pure-Python protobuf (see RESULTS.md): never the best peer.
    peers = [label for label in results.labels() if label not in OWN and label != "python-etcd3"]
    for workload in ("put", "get"):
        out.append(Check(f"{workload}: client CPU/op, etcdfast pure / raw grpcio (in-process A/B)",
                         results.median(AB_PURE, workload, "ab_cpu_ratio")))
    top = best(results, peers, "range", "cpu_ns_per_key")
    if top:
        out.append(Check("prefix get: client CPU per key, best peer / etcdfast fast",
                         results.ratio(top, FAST, "range", "cpu_ns_per_key"), ">= 3", f"best peer: {top}"))
        out.append(Check("prefix get: client CPU per key, etcdfast fast / best peer",
                         results.ratio(FAST, top, "range", "cpu_ns_per_key"), "<= 0.75", f"best peer: {top}"))
        for workload in ("put", "get"):
            fastest = best(results, peers, workload, "cpu_us_per_op")
            out.append(Check(f"{workload}: client CPU/op, best peer / etcdfast fast",
                             results.ratio(fastest, FAST, workload, "cpu_us_per_op") if fastest else None,
                             "", f"best peer: {fastest}"))
    out.append(Check("prefix get: client CPU, etcdfast fast / raw grpcio (no decoding)",
                     results.ratio(FAST, RAW, "range", "cpu_ns_per_key"), "<= 1.5"))
    leanest = best(results, peers, "mem", "held_mb")
    if leanest:
        out.append(Check("held prefix-get result: memory, etcdfast fast / leanest peer",
                         results.ratio(FAST, leanest, "mem", "held_mb"), "<= 1.0", f"peer: {leanest}"))
    for workload, metric in (("put", "cpu_us_per_op"), ("get", "cpu_us_per_op"), ("range", "cpu_ns_per_key")):
        out.append(Check(f"{workload}: client CPU, etcdfast pure / fast",
                         results.ratio(PURE, FAST, workload, metric)))
    # The AsyncClient against raw grpc.aio and aetcd.
    for workload in ("put", "get"):
        out.append(Check(f"{workload}: client CPU/op, AsyncClient / raw grpc.aio (in-process A/B)",
                         results.median(AB_ASYNC, workload, "ab_cpu_ratio"), "<= 1.05"))
        out.append(Check(f"{workload}: client CPU/op, AsyncClient / raw grpc.aio (separate processes)",
                         results.ratio(ASYNC, RAW_AIO, workload, "cpu_us_per_op")))
        if "aetcd" in results.labels():
            out.append(Check(f"{workload}: client CPU/op, AsyncClient / aetcd",
                             results.ratio(ASYNC, "aetcd", workload, "cpu_us_per_op"), "<= 1.0"))
    # Many callers on one client, against the best peer at the same concurrency.
    for kind, own, raw in (("threads", FAST, RAW), ("tasks", ASYNC, RAW_AIO)):
        rival = best(results, peers, kind, "ops_per_s", lowest=False)
        if rival:
            out.append(Check(f"{kind}: ops/s, etcdfast / best peer",
                             results.ratio(own, rival, kind, "ops_per_s"), ">= 1.0", f"best peer: {rival}"))
            out.append(Check(f"{kind}: p99 latency, etcdfast / best peer",
                             results.ratio(own, rival, kind, "p99_us"), "<= 1.0", f"best peer: {rival}"))
            out.append(Check(f"{kind}: client CPU/op, etcdfast / best peer",
                             results.ratio(own, rival, kind, "cpu_us_per_op"), "", f"best peer: {rival}"))
        out.append(Check(f"{kind}: ops/s, etcdfast / raw grpcio", results.ratio(own, raw, kind, "ops_per_s")))
        out.append(Check(f"{kind}: client CPU/op, etcdfast / raw grpcio",
                         results.ratio(own, raw, kind, "cpu_us_per_op")))
    return out


def render_checks(items: Sequence[Check], markdown: bool) -> str:
    rows = [[c.what, "-" if c.value is None else f"{c.value:.2f}", c.target or "-",
             c.verdict() or "-", c.detail] for c in items]
    return render(["figure", "value", "target", "verdict", "note"], rows, markdown)


def machine_info(etcd: str) -> Dict[str, Any]:
    info: Dict[str, Any] = {"os": platform.platform(), "python": platform.python_version(), "etcd": etcd}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu"] = match.group(1).strip() if match else platform.processor()
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))  # type: ignore[union-attr]
        info["ram_gib"] = round(kib / 2**20, 1)
    except (OSError, AttributeError):
        info["cpu"] = platform.processor()
    try:
        os_release = Path("/etc/os-release").read_text()
        match = re.search(r'^PRETTY_NAME="?([^"\n]+)', os_release, re.M)
        if match:
            info["os"] = f"{match.group(1)} ({platform.release()})"
    except OSError:
        pass
    info["cores"] = os.cpu_count()
    for dist in ("grpcio", "protobuf", "etcdfast"):
        try:
            import importlib.metadata as metadata

            info[dist] = metadata.version(dist)
        except Exception:
            pass
    return info


def print_outcome(skipped: Dict[str, str], failures: Dict[str, str], started: float) -> None:
    """A run's last lines: what was skipped and why (empty reason: it ran), what failed, the time."""
    for label, reason in skipped.items():
        if reason:
            print(f"\nskipped {label}: {reason}")
    for label, error in failures.items():
        print(f"\nFAILED {label}: {error}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# -- the server ---------------------------------------------------------------------


class Server:
    """The etcd under test: one we start (and stop by PID) or one we are given."""

    def __init__(self, endpoint: Optional[str]) -> None:
        self._own: Any = None
        self.endpoint = endpoint or ""
        self.version = "given by --endpoints"

    def __enter__(self) -> "Server":
        if not self.endpoint:
            from etcdfast.testing import EtcdServer

            # Data on tmpfs (EtcdServer's default) and --unsafe-no-fsync: the
            # disk must not be what is measured.
            self._own = EtcdServer().start()
            self.endpoint = self._own.endpoint
            self.version = ".".join(map(str, self._own.version))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


def preload(endpoint: str, keys: int) -> float:
    """Write the prefix-get keys in txns of 128 puts (etcd's --max-txn-ops); seconds taken."""
    import etcdfast

    started = time.perf_counter()
    with etcdfast.Client(endpoint, timeout=60) as client:
        # The /bench/ namespace is ours: clear what an earlier run left.
        client.delete(b"/bench/", prefix=True)
        for first in range(0, keys, 128):
            ops = [etcdfast.Op.put(h.RANGE_KEY % i, h.VALUE) for i in range(first, min(first + 128, keys))]
            client.txn(success=ops)
        count = client.get(h.RANGE_PREFIX, prefix=True, count_only=True).count
    if count != keys:
        raise SystemExit(f"preload wrote {count} keys under {h.RANGE_PREFIX!r}, expected {keys}")
    return time.perf_counter() - started


def cleanup(endpoint: str) -> None:
    import etcdfast

    with etcdfast.Client(endpoint, timeout=60) as client:
        client.delete(b"/bench/", prefix=True)


# -- main ---------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts for CI smoke (< 60 s)")
    parser.add_argument("--endpoints", help="HOST:PORT of an etcd to use instead of starting one")
    parser.add_argument("--json", help="write every record, the medians and the ratios here")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--rounds", type=int, default=0, help="override the number of interleaved rounds")
    parser.add_argument("--venvs", default=DEFAULT_VENVS, help="directory holding the peers' venvs")
    parser.add_argument("--only", help="comma-separated client names to run (default: all)")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def worker_runs(clients: Sequence[ClientSpec]) -> List[Tuple[str, ClientSpec, Sequence[str], Dict[str, str]]]:
    """One worker process per client and round, plus one for its ``mem``
    workload: a held result is measured in a process that did nothing else."""
    items: List[Tuple[str, ClientSpec, Sequence[str], Dict[str, str]]] = []
    for spec in clients:
        workloads = spec.workloads or h.WORKLOADS
        items.append((spec.name, replace(spec, workloads=tuple(w for w in workloads if w != "mem")), [], {}))
    for spec in clients:
        if "mem" in (spec.workloads or h.WORKLOADS):
            items.append((spec.name, replace(spec, workloads=("mem",)), [], {}))
    return items


def run_rounds(
    endpoint: str,
    items: Sequence[Tuple[str, ClientSpec, Sequence[str], Dict[str, str]]],
    params: Params,
    workloads: Sequence[str],
    results: Results,
    failures: Dict[str, str],
) -> None:
    """Run every (label, client, extra args, extra env) item for each round, interleaved.

    Shared with bench/grpc_settings.py, which runs the raw worker under many settings.
    """
    deadline = time.monotonic() + params.deadline
    for round_no, (label, spec, extra, env) in interleaved(items, params.rounds):
        if time.monotonic() > deadline:
            log(f"time budget of {params.deadline:.0f} s spent: stopping before round {round_no + 1}")
            break
        if label in failures:
            continue
        started = time.perf_counter()
        records, error = run_worker(spec, endpoint, params, workloads, extra, env)
        results.add(round_no, label, records)
        if error:
            failures[label] = error
            log(f"  round {round_no + 1}: {label} FAILED: {error}")
        else:
            log(f"  round {round_no + 1}: {label} done in {time.perf_counter() - started:.1f} s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    params = Params.for_mode(args)
    started = time.perf_counter()
    clients = own_clients() + ab_clients() + peer_clients(args.venvs)
    if args.only:
        wanted = set(args.only.split(","))
        clients = [c for c in clients if c.name in wanted]
    for spec in clients:
        probe(spec)
        if spec.skip:
            log(f"skipping {spec.name}: {spec.skip}")
    runnable = [c for c in clients if not c.skip]
    load_before = loadavg()
    results, failures = Results(), {}
    with Server(args.endpoints) as server:
        log(f"etcd {server.version} at {server.endpoint}; load average {load_before}")
        seconds = preload(server.endpoint, params.keys)
        log(f"preloaded {params.keys:,} keys in {seconds:.1f} s; {params.rounds} round(s) of "
            f"{', '.join(c.name for c in runnable)}")
        run_rounds(server.endpoint, worker_runs(runnable), params, h.WORKLOADS, results, failures)
        if args.endpoints:
            cleanup(server.endpoint)
        info = machine_info(server.version)
    info["load_before"], info["load_after"] = load_before, loadavg()
    wrong_twin = [r for r in results.records
                  if r["label"] in (FAST, AB_FAST, ASYNC, AB_ASYNC) and r["client"].endswith("pure")]
    if wrong_twin:
        failures[FAST] = "the Cython twin is not built: the 'fast' worker ran etcdfast-pure"

    headings = ["client"] + [c[0] for c in COLUMNS]
    found = checks(results)
    print(f"\n{params.n} sequential puts and gets, one {params.keys:,}-key prefix get "
          f"(x{params.range_repeats}); median of {params.rounds} interleaved round(s); "
          f"load {info['load_before']} -> {info['load_after']}\n")
    print(render(headings, table_rows(results, COLUMNS), args.markdown))
    print(f"\n{params.concurrent_ops} gets of one key from {params.threads} threads (sync clients) or "
          f"{params.tasks} asyncio tasks (async clients) sharing one client\n")
    print(render(["client"] + [c[0] for c in CONCURRENT_COLUMNS], table_rows(results, CONCURRENT_COLUMNS),
                 args.markdown))
    print()
    print(render_checks(found, args.markdown))
    print_outcome({spec.name: spec.skip for spec in clients}, failures, started)

    if args.json:
        document = {
            "kind": "etcdfast-e2e",
            "params": params.__dict__,
            "machine": info,
            "clients": {c.name: {"versions": c.versions, "skip": c.skip} for c in clients},
            "medians": {label: {f"{w}.{m}": results.median(label, w, m)
                                for _, w, m, _, _ in COLUMNS + CONCURRENT_COLUMNS}
                        for label in results.labels() if label not in AB},
            "checks": [{**c.__dict__, "verdict": c.verdict()} for c in found],
            "failures": failures,
            "records": results.records,
        }
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    required = [c.name for c in clients if c.name in OWN]
    return 1 if any(name in failures or name not in results.labels() for name in required) else 0


if __name__ == "__main__":
    sys.exit(main())
