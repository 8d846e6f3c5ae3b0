"""The documented results schemas, one JSON Schema file each. A writer stamps the newest `schema_version` its
schema lists (`current_version`), so a version bump is one edit of the schema file."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def _schema(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8"))


def current_version(name: str) -> str:
    """The last `schema_version` that <name>.schema.json accepts: the one written now (older ones stay valid)."""
    return _schema(name)["properties"]["schema_version"]["enum"][-1]
