"""python-etcd3 (``etcd3``) or etcd-sdk-python (``pyetcd``) under the shared harness.

etcd-sdk-python is python-etcd3's master branch re-released, so one worker
serves both: ``--package`` picks the import. Each runs in its own venv.
Best methods from their source: ``get_response``/``get_prefix_response``
return the protobuf RangeResponse itself, skipping the per-key
``KVMetadata`` objects that ``get``/``get_prefix`` build; ``put`` returns the
PutResponse as is. ``--api typical`` uses ``get``/``get_prefix``, the
documented ``(value, KVMetadata)`` API, instead.

python-etcd3 0.12.0's generated code predates protobuf 4, so with today's
protobuf it only imports with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python
(pure-Python protobuf); the orchestrator sets that for it.
"""

from __future__ import annotations

import argparse
import importlib

import _harness as h


def extend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package", choices=["etcd3", "pyetcd"], required=True)
    parser.add_argument("--api", choices=["best", "typical"], default="best")


def main() -> None:
    args = h.parse_args(extend)
    package = importlib.import_module(args.package)
    host, port = h.host_port(args.endpoint)
    client = package.client(host, port, timeout=60, grpc_options=h.grpc_options(args))
    try:
        if args.api == "best":
            items = h.workloads(
                args,
                put=client.put,
                get=client.get_response,
                prefix=lambda key: h.touch(client.get_prefix_response(key).kvs),
                value_of=lambda r: r.kvs[0].value,
            )
        else:
            items = h.workloads(
                args,
                put=client.put,
                get=client.get,
                prefix=lambda key: h.touch_pairs(client.get_prefix(key)),
                value_of=lambda r: r[0],
            )
        name = {"etcd3": "python-etcd3", "pyetcd": "etcd-sdk-python"}[args.package]
        h.run(name if args.api == "best" else f"{name}-typical", items)
    finally:
        client.close()


if __name__ == "__main__":
    main()
