"""The engine's file formats: formats/NAME.schema.json beside this module, checked with the
shared schemacheck package (published copies in docs/schemas/)."""

from __future__ import annotations

from pathlib import Path

from schemacheck import Formats, Place, Problem

FORMATS = Path(__file__).resolve().with_name("formats")
_FORMATS = Formats(FORMATS)
schema_file = _FORMATS.schema_file
load_schema = _FORMATS.load_schema
problems = _FORMATS.problems

__all__ = ["FORMATS", "Place", "Problem", "load_schema", "problems", "schema_file"]
