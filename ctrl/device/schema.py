"""JSON Schema of the device file, for editors (YAML language servers) and other tools."""

from __future__ import annotations

import json

from ctrl.device.model import SCHEMA_VERSION, DeviceFile


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a device file at the current schema_version.

    Numeric fields carry `x-unit` (SI: s, Hz, rad, or 1 for dimensionless) and their plausible range as
    minimum/maximum. Cross-references (names, channels, firmware) are beyond JSON Schema: `ctrl validate`.
    """
    s = DeviceFile.model_json_schema(mode="validation")
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["$id"] = f"https://ctrl.invalid/device-v{SCHEMA_VERSION}.schema.json"
    s["title"] = f"ctrl device file (schema_version {SCHEMA_VERSION})"
    return s


def json_schema_text() -> str:
    """The schema as stable text (same bytes on every run)."""
    return json.dumps(json_schema(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
