"""python-etcd3 (``etcd3``), etcd-sdk-python (``pyetcd``) or etcdfast's drop-in for them
(``etcdfast.compat.etcd3``) under the shared harness.

etcd-sdk-python is python-etcd3's master branch re-released, so one worker
serves all three: ``--package`` picks the import. The peers run in their own
venvs, the compat module in etcdfast's environment.
Best methods from their source: ``get_response``/``get_prefix_response``
return the protobuf RangeResponse itself, skipping the per-key
``KVMetadata`` objects that ``get``/``get_prefix`` build; ``put`` returns the
PutResponse as is. ``--api typical`` uses ``get``/``get_prefix``, the
documented ``(value, KVMetadata)`` API, instead (the pairs collected in a list,
as _harness.touch_pairs does); ``--api stream`` the same, iterated without
keeping them.

python-etcd3 0.12.0's generated code predates protobuf 4, so with today's
protobuf it only imports with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python
(pure-Python protobuf); the orchestrator sets that for it.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Dict

import _harness as h

PACKAGES = {"etcd3": "python-etcd3", "pyetcd": "etcd-sdk-python", "etcdfast.compat.etcd3": "etcdfast-compat"}


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package", choices=sorted(PACKAGES), required=True)
    parser.add_argument("--api", choices=["best", "typical", "stream"], default="best")


def connect(package: str, args: argparse.Namespace) -> Any:
    host, port = h.host_port(args.endpoint)
    return importlib.import_module(package).client(host, port, timeout=60, grpc_options=h.grpc_options(args))


def primitives(client: Any, api: str) -> Dict[str, Any]:
    """The harness primitives for python-etcd3's API (``best`` or ``typical``)."""
    if api == "best":
        return {
            "put": client.put,
            "get": client.get_response,
            "prefix": lambda key: h.touch(client.get_prefix_response(key).kvs),
            "value_of": lambda r: r.kvs[0].value,
        }
    if api == "stream":
        return {
            "put": client.put,
            "get": client.get,
            "prefix": lambda key: _stream_pairs(client.get_prefix(key)),
            "value_of": lambda r: r[0],
            "count_of": lambda count: count,
        }
    return {
        "put": client.put,
        "get": client.get,
        "prefix": lambda key: h.touch_pairs(client.get_prefix(key)),
        "value_of": lambda r: r[0],
    }


def _stream_pairs(pairs: Any) -> int:
    """``for value, meta in client.get_prefix(...)``, keeping nothing: what
    :func:`_harness.touch_pairs` reads, without holding every pair alive at once."""
    count = 0
    for _value, meta in pairs:
        meta.key  # noqa: B018 - the attribute read is the point
        count += 1
    return count


def name(package: str, api: str) -> str:
    return PACKAGES[package] + ("" if api == "best" else f"-{api}")


def main() -> None:
    args = h.parse_args(extend)
    client = connect(args.package, args)
    try:
        h.run(name(args.package, args.api), h.workloads(args, **primitives(client, args.api)))
    finally:
        client.close()


if __name__ == "__main__":
    main()
