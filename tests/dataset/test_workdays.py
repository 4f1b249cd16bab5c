"""A region's make-up working days (调休上班, issue 23 §9) through the importer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from servers import keyring_of_tests

from ivr.dataset.importer import DatasetError, import_dataset
from ivr.domain.accounts import region_for
from ivr.store.schema import ensure_schema, make_engine

KEYS = keyring_of_tests()


def test_workdays_are_imported_and_read_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    ensure_schema(engine)
    import_dataset(engine, {"region": {"code": "450200", "holidays": ["2026-10-01"],
                                       "workdays": ["2026-10-10", "2026-09-20"]}},
                   keyring=KEYS)
    with engine.connect() as conn:
        region = region_for(conn)
    engine.dispose()
    assert region.workdays == (date(2026, 9, 20), date(2026, 10, 10))


@pytest.mark.parametrize(("workdays", "said"), [
    (["2026-10-09"], "region: workdays: must be Saturdays or Sundays"),
    (["2026-10-01"], "region: workdays: must be Saturdays or Sundays (a weekday is a working "
                     "day already): 2026-10-01 is a weekday"),
    (["2026-10-03"], "workdays: 2026-10-03 is also a holiday"),
    (["2026-10-10", "2026-10-10"], "region: workdays: must list each date once"),
])
def test_broken_workdays_stop_the_import_naming_the_field(
        tmp_path: Path, workdays: list[str], said: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    ensure_schema(engine)
    with pytest.raises(DatasetError) as caught:
        import_dataset(engine, {"region": {"holidays": ["2026-10-01", "2026-10-03"],
                                           "workdays": workdays}},
                       keyring=KEYS)
    engine.dispose()
    assert said in f"{caught.value.record}: {caught.value.rule}"
