#!/usr/bin/env python3
"""Whole-process cost of one CLI call: ``etcdfast get k`` and ``--help`` next to etcdctl.

Every command runs as a fresh process against one local etcd (started here,
on loopback, stopped by PID), ``--runs`` times each, interleaved so that load
on the machine hits all of them alike; the table shows the median and the
ratio to etcdctl. Compiled bytecode is kept in a temporary
``PYTHONPYCACHEPREFIX`` (warmed first), as an installed package has it.

    python bench/cli_startup.py            # 20 runs each
    python bench/cli_startup.py --quick    # 5 runs each (CI smoke)

Targets (issue 14): ``etcdfast get k`` <= 0.16 s, ``etcdfast --help`` <= 0.08 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

from etcdfast._etcd import EtcdProcess, find_etcd_binary

TARGETS = {"etcdfast get k": 0.16, "etcdfast --help": 0.08}


def etcdctl_binaries() -> List[Tuple[str, str]]:
    out = []
    bundled = os.path.join(os.path.dirname(find_etcd_binary()), "etcdctl")
    if os.access(bundled, os.X_OK):
        out.append(("etcdctl 3.5 get k", bundled))
    if os.access("/usr/bin/etcdctl", os.X_OK):
        out.append(("etcdctl 3.4 get k", "/usr/bin/etcdctl"))
    return out


def enable_auth(endpoint: str) -> None:
    import etcdfast

    with etcdfast.Client(endpoint, timeout=10) as admin:
        admin.user_add("root", "rootpw")
        admin.user_grant_role("root", "root")
        admin.auth_enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 runs each")
    opts = parser.parse_args()
    runs = 5 if opts.quick else max(1, min(opts.runs, 200))
    py = sys.executable
    cache = tempfile.mkdtemp(prefix="etcdfast-pyc-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    server = EtcdProcess()
    server.start()
    # A second server with auth on: each authenticated call logs in (bcrypt on
    # the server, the same for every client), which scripts and etcd's e2e
    # suite pay once per process.
    secured = EtcdProcess()
    secured.start()
    try:
        # --endpoints on every command: etcdctl 3.5 refuses a flag that an
        # ETCDCTL_ variable also sets.
        plain = ["--endpoints", server.endpoint]
        enable_auth(secured.endpoint)
        login = ["--endpoints", secured.endpoint, "--user", "root:rootpw"]
        commands: Dict[str, List[str]] = {
            "python -c pass": [py, "-c", "pass"],
            "etcdfast --help": [py, "-m", "etcdfast", "--help"],
            "etcdfast get k": [py, "-m", "etcdfast", *plain, "get", "k"],
            "etcdfast put k v": [py, "-m", "etcdfast", *plain, "put", "k", "v"],
        }
        script = Path(py).parent / "etcdfast"
        if script.exists() and "pyenv/shims" not in str(script):
            commands["etcdfast get k (console script)"] = [str(script), *plain, "get", "k"]
        commands["etcdfast put k v, auth on"] = [py, "-m", "etcdfast", *login, "put", "k", "v"]
        for name, path in etcdctl_binaries():
            commands[name] = [path, *plain, "get", "k"]
            commands[name.replace("get k", "put k v, auth on")] = [path, *login, "put", "k", "v"]
        subprocess.run([py, "-m", "etcdfast", *plain, "put", "k", "v"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        for cmd in commands.values():  # warm the bytecode cache and the page cache
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times: Dict[str, List[float]] = {name: [] for name in commands}
        deadline = time.monotonic() + 300
        for _ in range(runs):
            for name, cmd in commands.items():
                started = time.perf_counter()
                done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                times[name].append(time.perf_counter() - started)
                if done.returncode != 0:
                    print(f"{name}: exit {done.returncode}: {done.stderr.decode(errors='replace')}",
                          file=sys.stderr)
                    return 1
            if time.monotonic() > deadline:
                break
    finally:
        server.stop()
        secured.stop()
        shutil.rmtree(cache, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    # Ratios against etcdctl 3.5 doing the same: a get, or an authenticated put.
    base = medians.get("etcdctl 3.5 get k")
    auth_base = medians.get("etcdctl 3.5 put k v, auth on")
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; {runs} runs each; "
          f"python {sys.version.split()[0]}")
    print(f"{'command':<34}{'median s':>10}{'min s':>8}{'x etcdctl 3.5':>15}{'target':>9}")
    met = True
    for name, median in medians.items():
        against = auth_base if name.endswith("auth on") else base
        ratio = f"{median / against:.1f}x" if against else "-"
        target = TARGETS.get(name)
        mark = ""
        if target is not None:
            ok = median <= target
            met = met and ok
            mark = f"<= {target:.2f} {'met' if ok else 'MISSED'}"
        print(f"{name:<34}{median:>10.3f}{min(times[name]):>8.3f}{ratio:>15}  {mark}")
    print("targets met" if met else "a target was missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
