"""Evaluate the expressions of a SageMaker pipeline definition, as the service does.

Supported: `{"Get": "Parameters.X"}`, `{"Get": "Execution.X"}`, `{"Get": "Steps.X.<property path>"}`,
`{"Std:Join": ...}` and `{"Std:JsonGet": ...}` (on a property file or an S3 URI). Anything else that
looks like an expression fails at once with its name, rather than being passed on as data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class ExpressionError(ValueError):
    """An expression the executor cannot evaluate; the message names it."""


@dataclass
class Scope:
    """What expressions can see while one execution runs."""

    parameters: dict[str, Any]
    execution: dict[str, Any]
    steps: dict[str, dict] = field(default_factory=dict)  # step name -> its properties (a describe-job document)
    property_files: dict[str, dict[str, str]] = field(default_factory=dict)  # step -> file name -> S3 URI
    read_s3: Callable[[str], bytes] | None = None


def evaluate(value: Any, scope: Scope) -> Any:
    """Return `value` with every expression in it replaced by its value."""
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Get":
            return _get(argument, scope)
        if key == "Std:Join":
            return str(argument.get("On", "")).join(_text(evaluate(v, scope)) for v in argument["Values"])
        if key == "Std:JsonGet":
            return _json_get(argument, scope)
        if key.startswith("Std:"):
            raise ExpressionError(f"unsupported pipeline function {key}: the local executor knows {EXPRESSION_KEYS}")
    return {key: evaluate(item, scope) for key, item in value.items()}


def references(value: Any) -> set[str]:
    """Names of the steps an argument document reads from (its data dependencies)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        get = value.get("Get")
        if len(value) == 1 and isinstance(get, str) and get.startswith("Steps."):
            found.add(get.split(".")[1])
        else:
            for item in value.values():
                found |= references(item)
    return found


def lookup(document: Any, path: str, what: str) -> Any:
    """Follow a property path like `ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`."""
    position, current = 0, document
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match:
            raise ExpressionError(f"cannot parse property path {path!r} of {what}")
        position = match.end()
        name, index, key = match.group(1), match.group(2), match.group(3) or match.group(4)
        try:
            if name is not None:
                current = current[name]
            elif index is not None:
                current = current[int(index)]
            elif isinstance(current, list):  # Outputs['train'] selects by the element's *Name field
                current = next(item for item in current if key in _names(item))
            else:
                current = current[key]
        except (KeyError, IndexError, TypeError, StopIteration):
            raise ExpressionError(f"{what} has no property {path!r}") from None
    return current


def _get(reference: str, scope: Scope) -> Any:
    kind, _, rest = reference.partition(".")
    if kind == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"undefined pipeline parameter {rest!r}")
        return scope.parameters[rest]
    if kind == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"unsupported execution variable Execution.{rest}")
        return scope.execution[rest]
    if kind == "Steps":
        step, _, path = rest.partition(".")
        if step not in scope.steps:
            raise ExpressionError(f"step {step!r} has not run, so {reference} has no value")
        return lookup(scope.steps[step], path, f"step {step}")
    raise ExpressionError(f"unsupported reference {reference!r}")


def _json_get(argument: dict, scope: Scope) -> Any:
    if scope.read_s3 is None:
        raise ExpressionError("Std:JsonGet needs S3 access")
    if "PropertyFile" in argument:
        reference = argument["PropertyFile"]["Get"]  # Steps.<step>.PropertyFiles.<name>
        _, step, _, name = reference.split(".", 3)
        uri = scope.property_files.get(step, {}).get(name)
        if uri is None:
            raise ExpressionError(f"step {step!r} has no property file {name!r}")
    elif "S3Uri" in argument:
        uri = _text(evaluate(argument["S3Uri"], scope))
    else:
        raise ExpressionError(f"Std:JsonGet needs PropertyFile or S3Uri, got {sorted(argument)}")
    try:
        document = json.loads(scope.read_s3(uri))
    except (ValueError, KeyError) as error:
        raise ExpressionError(f"Std:JsonGet cannot read JSON at {uri}: {error}") from None
    return lookup(document, argument["Path"], uri)


def _names(item: Any) -> set[str]:
    return {v for k, v in item.items() if k.endswith("Name")} if isinstance(item, dict) else set()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
