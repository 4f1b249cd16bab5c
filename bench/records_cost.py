"""What the call records cost a call: in-process balance calls (8 webhooks each, the status
callback included) with the records written and with their hooks made no-ops, alternated in
one run on one SQLite file; CPU seconds of this process per call, and their ratio.

    .venv/bin/python bench/records_cost.py [--calls 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import pinkeys
from ivr.engine.records import CallRecords
from ivr.resources import demo_dataset
from ivr.settings import Settings
from ivr.store.schema import ensure_schema, make_engine
from ivr.tools import loadgen
from ivr.web import create_app
from simulator import DirectTransport


def _no_op(*_args: Any, **_kwargs: Any) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("ivr").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        keys = pinkeys.generate(Path(tmp) / "pin-keys")
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = make_engine(url)
        ensure_schema(engine)
        import_dataset(engine, load_file(demo_dataset()), keyring=keys)
        engine.dispose()
        app = create_app(Settings(database_url=url, auth_token="bench-token-0123456789"),
                         keyring=keys)
        transport = DirectTransport(app)
        identities = loadgen.demo_identities()
        hooks = {name: getattr(CallRecords, name) for name in ("turn", "ended", "bridged")}

        def run() -> float:
            start = time.process_time()
            result = loadgen.run_load(transport, "http://localhost/voice", identities,
                                      calls=args.calls, concurrency=1,
                                      auth_token="bench-token-0123456789",
                                      status_callback="http://localhost/status")
            assert not result.error_count, "errors in the bench calls"
            return (time.process_time() - start) / args.calls

        run()  # warm-up
        with_records: list[float] = []
        without: list[float] = []
        for _ in range(args.rounds):
            with_records.append(run())
            for name in hooks:
                setattr(CallRecords, name, _no_op)
            without.append(run())
            for name, hook in hooks.items():
                setattr(CallRecords, name, hook)
        on, off = min(with_records), min(without)
        print(f"{args.calls} calls x {args.rounds} rounds, best round each, CPU ms per call "
              f"(8 webhooks): with records {on * 1000:.2f}, without {off * 1000:.2f}; "
              f"records add {(on / off - 1) * 100:.1f} % "
              f"({(on - off) * 1000 / 8:.3f} ms per webhook)")


if __name__ == "__main__":
    main()
