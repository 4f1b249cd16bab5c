"""The floor (bench/floor_app.py) under the very server `ivr12333 serve` runs (ivr/web/serve.py:
granian, RequestGuard, the thread pool, the same limits and options).

    python -m bench.serve_floor --port 5000 --workers 2
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.web.serve import DEFAULT_THREADS, guarded, run  # noqa: E402


def _load(threads: int, form: bool) -> Any:
    from bench.floor_app import create_app, create_form_app

    return guarded(create_form_app() if form else create_app(), threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--form", action="store_true", help="the floor that reads its form")
    args = parser.parse_args()
    run(partial(_load, args.threads, args.form), "127.0.0.1", args.port, args.workers,
        access_log=args.access_log, log_level="WARNING")


if __name__ == "__main__":
    main()
