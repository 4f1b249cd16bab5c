"""A/B: the app's CPU per in-process call in two source trees, interleaved on a shared machine.

    .venv/bin/python bench/ab.py BEFORE_TREE AFTER_TREE [--reps 4] [--calls 150]

Runs `bench/profile_webhooks.py --no-profile` of each tree in turn (A, B, A, B, ...), one
round each, and prints per run and in median the app's CPU ms per call (inside the WSGI
call, thread CPU time) and the whole call's CPU ms, then the ratio B/A of the medians.
Measures one change at a time as a ratio in one run, as the bench's README asks.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

LINE = re.compile(r"([0-9.]+) CPU ms per call.*in the app ([0-9.]+) ms per call")


def one(tree: Path, calls: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, str(tree / "bench" / "profile_webhooks.py"), "--no-profile",
         "--rounds", "1", "--calls", str(calls)],
        capture_output=True, text=True, check=True, cwd=tree).stdout
    match = LINE.search(out)
    if match is None:
        raise SystemExit(out)
    return float(match.group(2)), float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--calls", type=int, default=150)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    for _ in range(args.reps):
        for label, tree in (("A", args.a), ("B", args.b)):
            runs[label].append(one(tree.resolve(), args.calls))
            app, whole = runs[label][-1]
            print(f"{label}: app {app:.2f} ms/call, whole {whole:.2f} ms/call", flush=True)
    med = {k: (statistics.median(a for a, _ in v), statistics.median(w for _, w in v))
           for k, v in runs.items()}
    for k, (app, whole) in med.items():
        print(f"median {k}: app {app:.2f} ms/call, whole {whole:.2f} ms/call "
              f"({1000 / whole:.0f} calls per CPU-second)")
    print(f"B/A: app {med['B'][0] / med['A'][0]:.3f}, whole {med['B'][1] / med['A'][1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
