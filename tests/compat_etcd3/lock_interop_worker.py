"""One side of the lock interop test: take a python-etcd3-style lock ``--count`` times.

    python lock_interop_worker.py --impl etcd3|compat --endpoint HOST:PORT --name NAME --count 50

``--impl etcd3`` imports python-etcd3 0.12.0 itself (run it with its venv's
Python and PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python); ``--impl compat``
imports ``etcdfast.compat.etcd3`` under the same name. Both sides then run
this same loop through python-etcd3's API, so the only difference is the
library. Stdlib only besides the client.

Inside the lock it does what a lock exists for and what breaks without one:
a read-modify-write of a shared counter key with a pause in between (an
overlap loses an increment), and a "holder" key that must be empty on entry
(an overlap finds the other side's name there). It prints ``ready`` once
connected, starts on a line on stdin (so both sides start together), and
ends with one JSON line: acquisitions, attempts that timed out, overlaps
seen, and each critical section's start and end on CLOCK_MONOTONIC, which
all processes of the machine share.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["etcd3", "compat"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--name", required=True, help="the lock's name: key /locks/<name>")
    parser.add_argument("--counter", required=True, help="the shared counter's key")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--ttl", type=int, default=10)
    parser.add_argument("--hold", type=float, default=0.002,
                        help="seconds between the counter's read and write")
    parser.add_argument("--pause", type=float, default=0.005,
                        help="seconds of work outside the lock after each release")
    args = parser.parse_args()
    etcd3 = importlib.import_module("etcd3" if args.impl == "etcd3" else "etcdfast.compat.etcd3")
    host, _, port = args.endpoint.rpartition(":")
    client = etcd3.client(host, int(port), timeout=10)
    holder_key = args.counter + "/holder"
    client.get(args.counter)  # connected
    print("ready", flush=True)
    sys.stdin.readline()

    acquired = timed_out = overlaps = 0
    sections = []
    while acquired < args.count:
        lock = client.lock(args.name, ttl=args.ttl)
        # A bounded wait: python-etcd3's waiter can sleep through a release
        # that happens before its watch exists; it then tries again.
        if not lock.acquire(timeout=5):
            timed_out += 1
            continue
        entered = time.monotonic()
        holder, _ = client.get(holder_key)
        if holder:
            overlaps += 1
        client.put(holder_key, args.impl)
        value, _ = client.get(args.counter)
        time.sleep(args.hold)
        client.put(args.counter, str(int(value or 0) + 1))
        client.delete(holder_key)
        left = time.monotonic()
        lock.release()
        sections.append([entered, left])
        acquired += 1
        time.sleep(args.pause)  # the other side's turn, if its waiter is quick enough
    print(json.dumps({"impl": args.impl, "acquired": acquired, "timed_out": timed_out,
                      "overlaps": overlaps, "sections": sections}), flush=True)


if __name__ == "__main__":
    main()
