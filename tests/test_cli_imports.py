"""What one CLI call imports (the start-up cost is mostly imports; timings live in bench/).

Each case is a fresh interpreter that runs one command and lists ``sys.modules``.
``asyncio`` and ``grpc.aio`` are not checked on the KV path: ``import grpc``
itself imports both (grpcio's ``cygrpc`` and ``grpc/__init__``), so no client
on grpcio can avoid them; etcdfast's own asyncio client is checked instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List, Set

from etcdfast.testing import EtcdServer

PROBE = """
import json, sys
from etcdfast import cli
code = cli.main(sys.argv[1:])
print(json.dumps([code, sorted(sys.modules)]))
"""

#: Never on any plain command: the asyncio client, the test harness, other
#: verbs' modules, argparse -- and protobuf (its descriptor pool) with the
#: compiled codec; the pure twin decodes with protobuf's upb by design.
NEVER = ["etcdfast.aio", "etcdfast.testing", "pytest", "_pytest", "etcdfast.cli.bench", "etcdfast.cli.demo",
         "etcdfast.cli.bulk", "etcdfast.cli._embedded", "etcdfast.cli.auth", "etcdfast.cli.maintenance",
         "argparse"]
if os.environ.get("ETCDFAST_PURE", "") in ("", "0"):
    NEVER.append("google.protobuf")


def modules(*args: str) -> Set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    code, names = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    return set(names)


def unwanted(loaded: Set[str], prefixes: List[str]) -> List[str]:
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_kv_path_imports_only_the_kv_path() -> None:
    with EtcdServer() as server:
        got = modules("--endpoints", server.endpoint, "put", "k", "v")
        assert "etcdfast._sync.client" in got and "etcdfast.cli.kv" in got
        assert unwanted(got, NEVER + ["etcdfast.cli.txn", "etcdfast.cli.watch", "etcdfast.cli.lease"]) == []
        got = modules("--endpoints", server.endpoint, "get", "k", "-w", "json")
        assert unwanted(got, NEVER) == []


def test_a_login_imports_no_protobuf(auth_server: EtcdServer) -> None:
    """--user logs in through the codec: with the compiled twin, protobuf's
    descriptor pool stays unbuilt (it cost every authenticated call ~17 ms)."""
    got = modules("--endpoints", auth_server.endpoint, "--user", "root:rootpw", "put", "k", "v")
    assert "etcdfast._sync.client" in got
    assert unwanted(got, NEVER) == []


def test_help_imports_no_client() -> None:
    got = modules("--help")
    assert unwanted(got, NEVER + ["grpc", "etcdfast._sync", "etcdfast._core", "etcdfast.cli.kv",
                                  "etcdfast._codec", "etcdfast.api"]) == []
    got = modules("get", "--help")
    assert "etcdfast.cli.kv" in got
    assert unwanted(got, NEVER + ["grpc", "etcdfast._sync"]) == []
