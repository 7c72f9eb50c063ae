"""A JSON Schema (draft 2020-12) checker for the subset of keywords z.toJSONSchema emits for the contract
(jobs/schema/*.schema.json). Standard library only: the trainer validates its spec with it before importing torch,
and the tests run where pip cannot install `jsonschema`. An unknown keyword is an error, not silently ignored, so a
schema change that needs more than this subset fails loudly in CI."""

import math
import re
from urllib.parse import urlsplit

_ANNOTATIONS = {"$id", "$schema", "title", "description", "default", "examples"}
_KNOWN = _ANNOTATIONS | {
    "type", "properties", "required", "additionalProperties", "propertyNames", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "format", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "anyOf", "oneOf",
}


def _type_ok(value, expected):
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if expected == "integer":
        return isinstance(value, int) or float(value).is_integer()
    if expected == "number":
        return True
    raise ValueError(f"schema type {expected!r} is not supported")


def _path(parts):
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


def errors(schema, value, path=()):
    """Every problem of `value` against `schema`, as "field.path: problem" strings (empty when valid)."""
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) not supported: {sorted(unknown)}")
    where = _path(path)
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema.get("oneOf")
        results = [errors(b, value, path) for b in branches]
        passing = [r for r in results if not r]
        if "oneOf" in schema and len(passing) > 1:
            return [f"{where}: matches more than one of the allowed shapes"]
        if not passing:
            # The branch that got furthest (fewest problems) explains best what was meant.
            return min(results, key=len)
    problems = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            return [f"{where}: expected {' or '.join(types)}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: must be <= {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append(f"{where}: must be > {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            problems.append(f"{where}: must be < {schema['exclusiveMaximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{where}: must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: must match {schema['pattern']}")
        if schema.get("format") == "uri":
            parts = urlsplit(value)
            if not parts.scheme or not (parts.netloc or parts.path):
                problems.append(f"{where}: expected a URL")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where}: must have at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: must have at most {schema['maxItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(value):
                problems += errors(schema["items"], item, path + (i,))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{_path(path + (name,))}: required")
        for name, item in value.items():
            if name in props:
                problems += errors(props[name], item, path + (name,))
            elif "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    problems.append(f"{_path(path + (name,))}: unknown field")
                elif isinstance(extra, dict):
                    problems += errors(extra, item, path + (name,))
            if "propertyNames" in schema:
                problems += [p.replace(where, f"{where} key {name!r}", 1) for p in errors(schema["propertyNames"], name, path)]
    return problems
