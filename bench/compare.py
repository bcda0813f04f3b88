"""Compare two benchmark results, metric by metric.

    python bench/compare.py OLD.json NEW.json [--fail-above 1.2] [--markdown]

Takes two ``--json`` outputs of bench/e2e.py, or two pytest-benchmark files
(``pytest bench/test_codec_bench.py --benchmark-only --benchmark-json=F``), and
prints old, new and new/old for every figure both contain. A ratio above 1
means "new is worse" for every metric (ops/s is inverted to make this true),
so one threshold reads the same everywhere. With ``--fail-above R`` the exit
status is 1 when any ratio exceeds R: a regression gate for CI. Compare runs
from the same machine only, ideally taken at similar load.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import e2e

#: Metrics where a larger number is better; their ratio is taken old/new.
HIGHER_IS_BETTER = ("ops_per_s",)


def figures(document: Dict[str, Any]) -> Dict[str, float]:
    """Flatten either format into {"client workload.metric": value} or {"benchmark stat": value}."""
    if document.get("kind") == "etcdfast-e2e":
        return {f"{client} {metric}": value
                for client, metrics in document["medians"].items()
                for metric, value in metrics.items() if value is not None}
    if "benchmarks" in document:
        # The median resists the outliers a shared machine produces; min shows the floor.
        return {f"{bench['fullname']} {stat}": bench["stats"][stat]
                for bench in document["benchmarks"] for stat in ("median", "min")}
    raise SystemExit("unknown format: expected bench/e2e.py --json output or pytest-benchmark JSON")


def badness(key: str, old: float, new: float) -> Optional[float]:
    """new relative to old, > 1 meaning worse."""
    if not old or not new:
        return None
    return old / new if key.endswith(HIGHER_IS_BETTER) else new / old


def compare(old: Dict[str, float], new: Dict[str, float]) -> List[Tuple[str, float, float, Optional[float]]]:
    return [(key, old[key], new[key], badness(key, old[key], new[key])) for key in old if key in new]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--fail-above", type=float,
                        help="exit 1 if any new/old ratio (worse > 1) exceeds this")
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    old, new = (figures(json.loads(Path(p).read_text())) for p in (args.old, args.new))
    rows = compare(old, new)
    if not rows:
        print("the two files have no figure in common")
        return 1
    table = [[key, f"{a:.4g}", f"{b:.4g}", "-" if r is None else f"{r:.2f}"] for key, a, b, r in rows]
    print(e2e.render(["figure", "old", "new", "new/old (>1 worse)"], table, args.markdown))
    worse = [(key, r) for key, _, _, r in rows if r is not None and args.fail_above and r > args.fail_above]
    for key, ratio in worse:
        print(f"REGRESSION {key}: {ratio:.2f}x worse (limit {args.fail_above})", file=sys.stderr)
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
