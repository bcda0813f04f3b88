"""The writer of the watch benchmark: put N keys under a prefix as fast as etcd takes them.

``--mode bulk`` (default) uses ``put_many``: Txns of 128 puts, several in
flight -- the fastest way to load etcd, and what bulk loaders do. ``--mode
single`` puts one key per request from several threads (one event per
revision; the server's per-request cost then caps the rate near 3k/s on two
cores). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import etcdfast


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--mode", choices=["bulk", "single"], default="bulk")
    args = parser.parse_args()
    prefix = args.prefix.encode()
    value = b"v" * 128
    next_index = iter(range(args.count))
    lock = threading.Lock()

    with etcdfast.Client(args.endpoint, timeout=30) as client:
        def writer() -> None:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                client.put(prefix + b"%08d" % i, value)

        started = time.time()
        if args.mode == "bulk":
            client.put_many((prefix + b"%08d" % i, value) for i in range(args.count))
        else:
            threads = [threading.Thread(target=writer) for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        ended = time.time()
    print(json.dumps({"count": args.count, "started_at": started, "ended_at": ended,
                      "puts_per_s": args.count / (ended - started)}), flush=True)


if __name__ == "__main__":
    main()
