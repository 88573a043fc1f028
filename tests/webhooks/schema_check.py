"""A small JSON Schema check for the subset docs/webhooks/*.schema.json use (type, const, enum, required,
properties, additionalProperties: false, items, pattern, format date-time/date/uuid): the project carries no
jsonschema package, and these schemas are meant to stay that plain."""

import datetime as dt
import json
import re
import uuid
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "webhooks"
TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
    "null": type(None),
}


def load(event_type: str) -> dict:
    return json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())


def _is(value, name: str) -> bool:
    if name == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, TYPES[name])


def errors(value, schema: dict, where: str = "$") -> list[str]:
    found = []
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, name) for name in names):
            return [f"{where}: {value!r} is not {names}"]
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
        fmt = schema.get("format")
        try:
            if fmt == "date-time":
                assert value.endswith("Z")
                dt.datetime.fromisoformat(value)
            elif fmt == "date":
                dt.date.fromisoformat(value)
            elif fmt == "uuid":
                uuid.UUID(value)
        except (AssertionError, ValueError):
            found.append(f"{where}: {value!r} is not a {fmt}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                found.append(f"{where}: {name} missing")
        if schema.get("additionalProperties") is False:
            found += [f"{where}: {name} not in the schema" for name in value if name not in props]
        for name, item in value.items():
            if name in props:
                found += errors(item, props[name], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += errors(item, schema["items"], f"{where}[{index}]")
    return found
