"""Bulk import and streaming read, side by side in one run against one etcd (issue #4).

    python bench/bulk_e2e.py [--keys N] [--reps R] [--quick] [--json out.json]
                             [--pages 50000,...] [--only NAME,...] [--replay out.json]

Starts one etcd (etcdfast.testing.EtcdServer: data on tmpfs, --unsafe-no-fsync
on 3.5), then for each client, in its own worker process (bench/workers/
bulk_worker.py; the peers with their own virtualenv's Python):

1. import: ``--keys`` keys (24-byte keys, 128-byte values) into a fresh prefix,
   each client its best way -- etcdfast ``put_many`` with its defaults, the
   peers Txns of 128 puts with several in flight (``--peer-concurrency``),
   and a raw-grpcio floor (pre-encoded Txns, no decoding: grpcio's own cost).
   Reported: keys/s, client CPU per key (``time.process_time`` of the worker,
   every thread) and etcd's CPU per key. The orchestrator then counts the
   prefix itself: a client is only credited for keys that are there.
2. read: the same keys streamed back, each client's best way (etcdfast
   ``iter_range`` at its default page size and the ``--pages`` sizes; the
   peers one big Range, or pages where their API can page), in a fresh
   process: wall time, client CPU, etcd CPU, peak RSS and its growth over the
   idle client right before. etcdfast also reads with one Range, the peers'
   way, to show what paging costs the server (not a streaming read: no target).
3. cleanup: delete the prefix, compact (physical) and defragment.

Why one server with a cleanup instead of a fresh server per client: the
comparison is meant to run side by side against one etcd, and the cleanup
does bring it back to the same state -- the log shows the database at 0.02 MB
before every import. etcd's RSS stays between 1.2 and 2.2 GB over a
1M-key run, without a trend (Go keeps freed heap for reuse); interleaving
spreads whatever remains over all clients.

Clients run in A B C, C B A ... order over ``--reps`` repetitions so that
noise from other jobs on the machine lands on all alike; figures are medians.
A ratio to "the best peer" is the median over repetitions of the client's
figure over the best peer of the same repetition. A peer whose venv is
missing (or does not import) is skipped with the reason printed. Missed
targets are reported, not fatal: the exit status is 0 unless etcdfast itself
could not be measured (a smoke run must catch that).
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
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import etcdfast
from etcdfast.api.bulk import PAGE_BYTES
from etcdfast.testing import EtcdServer

BENCH = Path(__file__).resolve().parent
WORKER = BENCH / "workers" / "bulk_worker.py"
VENVS = os.environ.get("BENCH_VENVS", "/tmp/bench-venvs")
sys.path.insert(0, str(WORKER.parent))

import _harness as h  # noqa: E402 - the workers' directory is not a package
from bulk_worker import KEY_BYTES  # noqa: E402
from e2e import import_versions  # noqa: E402 - a sibling script, on sys.path as the script's directory

#: What one key-value read back must weigh: the worker's key and value sizes.
PAIR_BYTES = KEY_BYTES + len(h.VALUE)

FAST, FAST_TUNED, PURE = "etcdfast-fast", "etcdfast-fast c=16", "etcdfast-pure"
RAW, RAW_TUNED = "raw-grpcio floor", "raw-grpcio floor c=16"
#: Fixed page sizes read besides iter_range's default byte-sized pages
#: (etcdfast and the peer that can page): etcd 3.4/3.5 counts the rest of the
#: range for every page, so on a big range the page size decides how much the
#: server works (``--pages``).
EXTRA_PAGES = (10_000, 50_000)
#: Txns in flight for the peers. Measured with this worker (200k keys, two
#: interleaved runs, median keys/s): aetcd 74k/89k/111k/114k/113k and
#: etcd-sdk-python 91k/120k/117k/119k/119k at 1/2/4/8/16; python-etcd3 is bound
#: by its pure-Python protobuf (19k/18k/18k at 1/4/8). 8 is at or within noise
#: of each one's best.
PEER_CONCURRENCY = 8
#: Server flags that bound what the run leaves behind without touching the
#: measured paths: compaction deletes 100k revisions per batch instead of 1,000
#: (etcd sleeps 10 ms between batches: 2M revisions would take 20 s per
#: cleanup), and a snapshot every 10k raft entries lets etcd drop its in-memory
#: raft log (~170 MB per 1M-key import) instead of holding every import's.
SERVER_ARGS = ["--experimental-compaction-batch-limit", "100000", "--snapshot-count", "10000"]

Record = Dict[str, Any]


@dataclass
class Client:
    """One client: how to run its worker, what it reads, or why it is skipped."""

    name: str
    worker: str  # the worker's --client
    python: str = sys.executable
    env: Dict[str, str] = field(default_factory=dict)
    peer: bool = False
    import_args: List[str] = field(default_factory=list)
    reads: List[Tuple[str, List[str]]] = field(default_factory=list)  # (row label, worker args)
    module: str = ""  # what the probe imports
    skip: str = ""
    versions: Dict[str, str] = field(default_factory=dict)

    def environ(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("ETCDFAST_PURE", None)
        if self.peer:
            env.pop("PYTHONPATH", None)  # nothing of ours may leak into a peer's venv
        return {**env, **self.env}


Read = Tuple[str, List[str]]  # row label, worker arguments
ITER_RANGE, ONE_RANGE = "iter_range", "(one Range)"


def pages(label: str, sizes: Sequence[int]) -> List[Read]:
    return [(f"{label} pages of {size:,}", ["--page-size", str(size)]) for size in sizes]


def clients(venvs: str, peer_concurrency: int, extra_pages: Sequence[int]) -> List[Client]:
    extra = list(extra_pages)

    def streaming(name: str) -> List[Read]:
        return [(f"{name} {ITER_RANGE} default pages (~{PAGE_BYTES >> 20} MiB)", []),
                *pages(f"{name} {ITER_RANGE}", extra)]

    own = [
        # Also one Range, like the peers: the same server work, so it shows
        # what paging costs etcd (informational: it is not a streaming read).
        Client(FAST, "etcdfast", module="etcdfast", reads=[
            *streaming(FAST), (f"{FAST} get(prefix=True) {ONE_RANGE}", ["--page-size", "0"])]),
        # Informational: concurrency=16 given explicitly -- today's default, so
        # a second sample of the default row that shows the run-to-run noise.
        Client(FAST_TUNED, "etcdfast", import_args=["--concurrency", "16"], module="etcdfast"),
        Client(PURE, "etcdfast", env={"ETCDFAST_PURE": "1"}, reads=streaming(PURE), module="etcdfast"),
        # The same numbers of Txns in flight as the two etcdfast-fast rows.
        Client(RAW, "raw", import_args=["--concurrency", "4"], module="grpc"),
        Client(RAW_TUNED, "raw", import_args=["--concurrency", "16"], module="grpc"),
    ]
    peers: List[Tuple[str, str, str, str, List[Read], Dict[str, str]]] = [
        # (name, venv, worker --client, module, reads, environment)
        ("aetcd", "aetcd", "aetcd", "aetcd", [(f"aetcd get_prefix {ONE_RANGE}", [])], {}),
        ("etcd-sdk-python", "etcd-sdk-python", "pyetcd", "pyetcd",
         [(f"etcd-sdk-python get_prefix_response {ONE_RANGE}", []),
          *pages("etcd-sdk-python get_range_response", extra)], {}),
        # 0.12.0's generated code predates protobuf 4: it imports only with the
        # pure-Python protobuf runtime. It drops limit, so it cannot page.
        ("python-etcd3", "etcd3", "etcd3", "etcd3",
         [(f"python-etcd3 get_prefix_response {ONE_RANGE}", [])],
         {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}),
    ]
    found = own
    for name, venv, worker, module, reads, env in peers:
        python = os.path.join(venvs, venv, "bin", "python")
        client = Client(name, worker, python, env, peer=True, reads=reads, module=module,
                        import_args=["--concurrency", str(peer_concurrency)])
        if not os.access(python, os.X_OK):
            client.skip = f"no venv at {os.path.join(venvs, venv)}"
        found.append(client)
    return found


def probe(client: Client) -> None:
    """Import the client in its own interpreter: versions for the report, or a skip reason."""
    if not client.skip:
        dist = {"pyetcd": "etcd-sdk-python", "grpc": "grpcio"}.get(client.module, client.module)
        client.versions, client.skip = import_versions(client.python, client.module, dist,
                                                       client.environ())


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- running ------------------------------------------------------------------------


class Bench:
    """The server, the run's parameters, and every record."""

    def __init__(self, server: EtcdServer, keys: int, worker_timeout: float) -> None:
        self.server = server
        self.keys = keys
        self.worker_timeout = worker_timeout
        # No keepalive pings: this client idles for minutes while workers run,
        # and etcd answers pings on an idle connection with GOAWAY
        # "too_many_pings" (its enforcement policy does not permit them without a stream).
        self.admin = etcdfast.Client(server.endpoint, timeout=worker_timeout, keepalive_time=None)
        self.records: List[Record] = []
        self.failures: Dict[str, str] = {}
        self.runs = 0

    def fresh_prefix(self) -> str:
        # 9 bytes: the worker pads the index with zeros up to KEY_BYTES (24).
        self.runs += 1
        prefix = f"/bulk/{self.runs:03d}/"
        if self.admin.count(prefix, prefix=True):
            raise SystemExit(f"prefix {prefix} is not empty")
        return prefix

    def worker(self, client: Client, phase: str, prefix: str, args: Sequence[str]) -> Optional[Record]:
        command = [client.python, str(WORKER), "--client", client.worker, "--phase", phase,
                   "--endpoint", self.server.endpoint, "--prefix", prefix, "--keys", str(self.keys),
                   "--server-pid", str(self.server.pid or 0), *args]
        try:
            done = subprocess.run(command, env=client.environ(), capture_output=True, text=True,
                                  timeout=self.worker_timeout, cwd=str(WORKER.parent))
        except subprocess.TimeoutExpired:
            self.fail(client.name, phase, f"timed out after {self.worker_timeout:.0f} s")
            return None
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            self.fail(client.name, phase, f"exit {done.returncode}: {tail}")
            return None
        return json.loads(lines[-1])  # type: ignore[no-any-return]

    def fail(self, label: str, phase: str, why: str) -> None:
        self.failures[f"{label} {phase}"] = why
        log(f"  FAILED {label} {phase}: {why}")

    def server_state(self) -> Dict[str, float]:
        """Database size and etcd's RSS: shows every client starts from the same state."""
        status = self.admin.status()
        rss = 0.0
        try:
            text = Path(f"/proc/{self.server.pid}/status").read_text()
            rss = int(text.split("VmRSS:")[1].split()[0]) / 1024
        except (OSError, IndexError, ValueError):
            pass
        return {"db_mb": status.db_size / 2**20, "db_in_use_mb": status.db_size_in_use / 2**20,
                "etcd_rss_mb": rss}

    def run_client(self, rep: int, client: Client) -> None:
        """Import, verify, read back, clean up: one client's turn in one repetition."""
        prefix = self.fresh_prefix()
        state = self.server_state()
        record = self.worker(client, "import", prefix, client.import_args)
        if record is not None:
            # Count it ourselves: the worker's word is not enough to credit it.
            stored = self.admin.count(prefix, prefix=True)
            record.update(rep=rep, row=client.name, stored=stored, server_before=state)
            if stored != self.keys or record["claimed"] != self.keys:
                self.fail(client.name, "import", f"{stored:,} keys stored, {record['claimed']:,} claimed, "
                                                 f"{self.keys:,} expected")
            else:
                self.records.append(record)
                log(f"  rep {rep + 1} {client.name:22} import {record['keys_per_s']:>9,.0f} keys/s "
                    f"{record['cpu_us_per_key']:6.2f} us/key CPU (db {state['db_mb']:.2f} MB, "
                    f"etcd RSS {state['etcd_rss_mb']:.0f} MB before)")
                reads = client.reads if rep % 2 == 0 else client.reads[::-1]
                for label, args in reads:
                    self.read(rep, client, label, prefix, args)
        started = time.perf_counter()
        deleted = self.admin.delete_many(prefix, prefix=True)
        revision = self.admin.status().header.revision
        self.admin.compact(revision, physical=True)
        self.admin.defragment()
        log(f"  cleanup: {deleted:,} keys deleted, compacted, defragmented in "
            f"{time.perf_counter() - started:.1f} s")

    def read(self, rep: int, client: Client, label: str, prefix: str, args: Sequence[str]) -> None:
        record = self.worker(client, "read", prefix, args)
        if record is None:
            return
        record.update(rep=rep, row=label)
        expected = self.keys * PAIR_BYTES
        if record["keys"] != self.keys or record["bytes"] != expected:
            self.fail(label, "read", f"read {record['keys']:,} keys / {record['bytes']:,} bytes, "
                                     f"expected {self.keys:,} / {expected:,}")
            return
        self.records.append(record)
        log(f"  rep {rep + 1} {label:60} {record['keys_per_s']:>9,.0f} keys/s "
            f"{record['cpu_us_per_key']:6.2f} us/key CPU, RSS +{record['rss_growth_mb']:.0f} MB")


def interleaved(items: Sequence[Client], reps: int) -> Iterator[Tuple[int, Client]]:
    """(rep, client) in A B C, C B A, ... order: each client's average position is the same."""
    for rep in range(reps):
        for item in (items if rep % 2 == 0 else list(reversed(items))):
            yield rep, item


# -- reporting ----------------------------------------------------------------------


class Figures:
    """Medians and per-repetition ratios over the records of one phase."""

    def __init__(self, records: List[Record], phase: str) -> None:
        self.records = [r for r in records if r["phase"] == phase]

    def rows(self) -> List[str]:
        return list(dict.fromkeys(r["row"] for r in self.records))

    def series(self, row: str, metric: str) -> Dict[int, float]:
        return {r["rep"]: r[metric] for r in self.records if r["row"] == row and r.get(metric) is not None}

    def median(self, row: str, metric: str) -> Optional[float]:
        values = list(self.series(row, metric).values())
        return statistics.median(values) if values else None

    def ratio_to_best(self, row: str, rivals: Sequence[str], metric: str) -> Optional[float]:
        """Median over repetitions of ``row`` / the best of ``rivals`` in that repetition."""
        theirs = [self.series(rival, metric) for rival in rivals]
        pairs = []
        for rep, value in self.series(row, metric).items():
            best = max((series[rep] for series in theirs if series.get(rep)), default=None)
            if best:
                pairs.append(value / best)
        return statistics.median(pairs) if pairs else None

    def ratio_of_medians(self, a: str, b: str, metric: str) -> Optional[float]:
        ma, mb = self.median(a, metric), self.median(b, metric)
        return ma / mb if ma is not None and mb else None

    def best(self, rows: Sequence[str], metric: str = "keys_per_s") -> Optional[str]:
        measured = [row for row in rows if self.median(row, metric) is not None]
        return max(measured, key=lambda row: self.median(row, metric) or 0.0) if measured else None


Column = Tuple[str, str, str]  # heading, metric, format

IMPORT_COLUMNS: List[Column] = [
    ("keys/s", "keys_per_s", "{:,.0f}"), ("wall s", "wall_s", "{:.1f}"),
    ("client CPU us/key", "cpu_us_per_key", "{:.2f}"), ("etcd CPU us/key", "server_cpu_us_per_key", "{:.2f}"),
]
READ_COLUMNS: List[Column] = [
    ("keys/s", "keys_per_s", "{:,.0f}"), ("wall s", "wall_s", "{:.2f}"),
    ("client CPU us/key", "cpu_us_per_key", "{:.2f}"), ("etcd CPU us/key", "server_cpu_us_per_key", "{:.2f}"),
    ("idle RSS MB", "rss_idle_mb", "{:.0f}"), ("peak RSS MB", "rss_peak_mb", "{:.0f}"),
    ("RSS growth MB", "rss_growth_mb", "{:.0f}"),
]


def render(figures: Figures, columns: Sequence[Column], notes: Dict[str, str]) -> str:
    def formatted(row: str, metric: str, fmt: str) -> str:
        value = figures.median(row, metric)
        return "-" if value is None else fmt.format(value)

    headings = ["client", *(c[0] for c in columns), ""]
    body = [[row, *(formatted(row, metric, fmt) for _, metric, fmt in columns), notes.get(row, "")]
            for row in figures.rows()]
    widths = [max(len(line[i]) for line in [headings, *body]) for i in range(len(headings))]
    return "\n".join("  ".join(cell.ljust(w) if i in (0, len(widths) - 1) else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
                     for line in [headings, *body])


@dataclass
class Check:
    """One figure of the run, with the issue's target when it has one."""

    what: str
    value: Optional[float]
    target: str = ""  # e.g. ">= 2", "<= 2", "< 100"
    note: str = ""

    def verdict(self) -> str:
        if not self.target:
            return ""
        if self.value is None:
            return "not measured"
        op, limit = self.target.split()
        ok = {">=": self.value >= float(limit), "<=": self.value <= float(limit),
              "<": self.value < float(limit)}[op]
        return "met" if ok else "MISSED"


def versus(what: str, figures: Figures, row: str, rivals: Sequence[str], target: str) -> Check:
    """keys/s of ``row`` over the best peer's, the peer being whichever was
    fastest in the same repetition (pairs measured minutes apart); the note
    names the peer with the best median and the plain ratio of medians."""
    best = figures.best(rivals)
    plain = figures.ratio_of_medians(row, best, "keys_per_s") if best else None
    note = f"best peer by median: {best}" + (f", ratio of medians {plain:.2f}" if plain else "")
    return Check(f"{what}, {row} / best peer", figures.ratio_to_best(row, rivals, "keys_per_s"),
                 target, note)


def checks(imports: Figures, reads: Figures, peers: Sequence[str]) -> List[Check]:
    out: List[Check] = []
    rivals = [row for row in imports.rows() if row in peers]
    for row in (FAST, FAST_TUNED, PURE):
        out.append(versus("import keys/s", imports, row, rivals, ">= 1.3" if row == FAST else ""))
    for row in (FAST, FAST_TUNED, PURE, RAW, RAW_TUNED):
        out.append(Check(f"import client CPU us/key, {row}", imports.median(row, "cpu_us_per_key"),
                         "<= 2" if row == FAST else ""))
    # put_many's default is 16 Txns in flight: both etcdfast rows pair with the
    # floor at 16 (the floor at 4 is the reference for a concurrency=4 run).
    for row, floor_row in ((FAST, RAW_TUNED), (FAST_TUNED, RAW_TUNED)):
        cost, floor = imports.median(row, "cpu_us_per_key"), imports.median(floor_row, "cpu_us_per_key")
        if cost is not None and floor is not None:
            out.append(Check(f"import client CPU us/key, {row} - {floor_row}", cost - floor, "",
                             "what etcdfast adds to grpcio's own cost at the same concurrency"))
    rivals = [row for row in reads.rows() if row.split()[0] in peers]
    ours = [row for row in reads.rows() if row.startswith("etcdfast-")]
    for row in ours:
        # The targets are for streaming (iter_range) reads; one Range is context.
        target = ">= 2" if row.startswith(FAST + " " + ITER_RANGE) else ""
        out.append(versus("read keys/s", reads, row, rivals, target))
    for row in ours:
        # Issue 15: records built on access make the streaming read cheap per key.
        out.append(Check(f"read client CPU us/key, {row}", reads.median(row, "cpu_us_per_key"),
                         "<= 0.35" if row.startswith(FAST + " " + ITER_RANGE) else ""))
    for row in ours:
        out.append(Check(f"read peak RSS growth MB, {row}", reads.median(row, "rss_growth_mb"),
                         "< 100" if ITER_RANGE in row else ""))
    return out


def render_checks(items: Sequence[Check]) -> str:
    lines = []
    for c in items:
        if c.value is None and not c.target:
            continue  # an informational figure of a client that did not run
        value = "-" if c.value is None else f"{c.value:.2f}"
        target = f" (target {c.target}: {c.verdict()})" if c.target else ""
        note = f"  [{c.note}]" if c.note else ""
        lines.append(f"{c.what}: {value}{target}{note}")
    return "\n".join(lines)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# -- main ---------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of every client")
    parser.add_argument("--quick", action="store_true", help="20,000 keys, one repetition (CI smoke, < 60 s)")
    parser.add_argument("--json", type=Path, help="write every record, the medians and the checks here")
    parser.add_argument("--replay", type=Path, metavar="JSON",
                        help="print the report of a run saved with --json again (nothing is run)")
    parser.add_argument("--venvs", default=VENVS, help="directory holding the peers' venvs")
    parser.add_argument("--peer-concurrency", type=int, default=PEER_CONCURRENCY)
    parser.add_argument("--only", help="comma-separated client names (default: all)")
    parser.add_argument("--pages", type=lambda text: [int(n) for n in text.split(",") if n],
                        default=list(EXTRA_PAGES),
                        help="page sizes read besides iter_range's default, comma-separated "
                             f"(default {','.join(map(str, EXTRA_PAGES))}; '' for none)")
    parser.add_argument("--max-minutes", type=float, default=120.0,
                        help="time budget: no client starts after it is spent")
    args = parser.parse_args(argv)
    if args.replay:
        report(json.loads(args.replay.read_text()), args.json)
        return 0
    if args.quick:
        args.keys, args.reps = 20_000, 1
    if not 0 < args.keys <= 10**15:  # the key index has 15 digits
        parser.error("--keys must be in 1..10**15")
    started = time.perf_counter()
    budget = time.monotonic() + args.max_minutes * 60
    everyone = clients(args.venvs, args.peer_concurrency, args.pages)
    if args.only:
        everyone = [c for c in everyone if c.name in args.only.split(",")]
    for client in everyone:
        probe(client)
        if client.skip:
            log(f"skipping {client.name}: {client.skip}")
    runnable = [c for c in everyone if not c.skip]
    peers = [c.name for c in runnable if c.peer]
    load_before = loadavg()
    # Per worker: start-up plus the slowest client's pace (python-etcd3 imports
    # at ~60 us/key with pure-Python protobuf), with room for a busy machine.
    worker_timeout = 120 + args.keys * 400e-6
    with EtcdServer(extra_args=SERVER_ARGS) as server:
        version = ".".join(map(str, server.version))
        log(f"etcd {version} at {server.endpoint} (pid {server.pid}); {args.keys:,} keys, "
            f"{args.reps} rep(s); load average {load_before}")
        bench = Bench(server, args.keys, worker_timeout)
        try:
            for rep, client in interleaved(runnable, args.reps):
                if time.monotonic() > budget:
                    log(f"time budget of {args.max_minutes:.0f} min spent: stopping")
                    break
                bench.run_client(rep, client)
        finally:
            bench.admin.close()
    if any(r["row"].startswith(FAST) and r["client"] != FAST for r in bench.records):
        bench.failures[FAST] = "the Cython twin is not built: the fast rows ran etcdfast-pure"
    notes = {c.name: " ".join(c.import_args) for c in runnable if c.import_args}
    notes[FAST] = notes[PURE] = "put_many defaults"
    run = {
        "kind": "etcdfast-bulk-e2e", "keys": args.keys, "reps": args.reps, "etcd": version,
        "server_args": SERVER_ARGS, "cpus": os.cpu_count(), "load_before": load_before,
        "load_after": loadavg(), "peer_concurrency": args.peer_concurrency, "peers": peers,
        "notes": notes, "seconds": time.perf_counter() - started,
        "clients": {c.name: {"versions": c.versions, "skip": c.skip} for c in everyone},
        "failures": bench.failures, "records": bench.records, "time": time.time(),
    }
    report(run, args.json)
    # Our own rows failing is a bug to catch (CI smoke); anything else is a figure.
    return 1 if any(what.startswith("etcdfast-") for what in bench.failures) else 0


def report(run: Dict[str, Any], json_path: Optional[Path]) -> None:
    """Print the tables and the checks of a run (a fresh one, or one saved with --json)."""
    imports, reads = Figures(run["records"], "import"), Figures(run["records"], "read")
    found = checks(imports, reads, run["peers"])
    print(f"\nbulk import of {run['keys']:,} keys ({KEY_BYTES}-byte keys, {len(h.VALUE)}-byte values), "
          f"etcd {run['etcd']}, {run['cpus']} CPUs, median of {run['reps']} interleaved rep(s); "
          f"load average {run['load_before']} -> {run['load_after']}\n")
    print(render(imports, IMPORT_COLUMNS, run["notes"]))
    print(f"\nstreaming read of the same {run['keys']:,} keys (each client its own import)\n")
    print(render(reads, READ_COLUMNS, {}))
    print("\nratios and targets (medians of per-repetition ratios)\n")
    print(render_checks(found))
    for name, client in run["clients"].items():
        if client["skip"]:
            print(f"\nskipped {name}: {client['skip']}")
    for what, why in run["failures"].items():
        print(f"\nFAILED {what}: {why}")
    print(f"\ntotal {run['seconds']:.0f} s")
    if json_path:
        medians = {phase: {row: {m: figures.median(row, m) for _, m, _ in columns} for row in figures.rows()}
                   for phase, figures, columns in (("import", imports, IMPORT_COLUMNS),
                                                   ("read", reads, READ_COLUMNS))}
        verdicts = [{**c.__dict__, "verdict": c.verdict()} for c in found]
        document = {**run, "medians": medians, "checks": verdicts}
        json_path.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
