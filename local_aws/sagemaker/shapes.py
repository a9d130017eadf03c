"""Requests and answers checked against botocore's SageMaker service model: the API's own contract.

AWS validates every request against the operation's input shape before anything else runs and
answers `ValidationException` ("1 validation error detected: Value 'x' at 'pipelineExecutionArn'
failed to satisfy constraint: ..."). boto3 checks only required members and types on the client
side; the AWS CLI, SDKs in other languages and raw HTTP check less. `validate_request` gives every
locally answered operation AWS's check, so malformed input is a 400, never a handler's 500.

`answer_problems` walks an answer the other way (member names, types, enums, botocore's required
members): the conformance tests use it on every emulated operation's wire answer.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from local_aws.core import api


@functools.cache
def service_model(service: str = "sagemaker"):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def operation_model(operation: str, service: str = "sagemaker"):
    return service_model(service).operation_model(operation)


def validate_request(operation: str, request: dict[str, Any], service: str = "sagemaker") -> None:
    """Raise AWS's ValidationException for the first problems `request` has against the input shape."""
    shape = operation_model(operation, service).input_shape
    problems = _request_problems(shape, request, "") if shape is not None else []
    if problems:
        count = len(problems)
        raise api.LocalApiError(
            "ValidationException",
            f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems[:5])}",
        )


def _request_problems(shape, value: Any, path: str) -> list[str]:
    where = path or "request"
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"Value at '{where}' failed to satisfy constraint: Member must be a structure"]
        problems = []
        for name in shape.required_members:
            if value.get(name) is None:
                problems.append(
                    f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: Member must not be null"
                )
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                # AWS ignores no member silently; botocore would never send one: a raw client's typo.
                problems.append(f"Member '{name}' at '{where}' is not a member of {shape.name}")
            elif item is not None:
                problems += _request_problems(member, item, _member_path(path, name))
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"Value at '{where}' failed to satisfy constraint: Member must be a list"]
        problems = _length_problems(shape, value, where, "length")
        for index, item in enumerate(value, 1):
            problems += _request_problems(shape.member, item, f"{where}.{index}.member")
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"Value at '{where}' failed to satisfy constraint: Member must be a map"]
        problems = _length_problems(shape, value, where, "length")
        for key, item in value.items():
            problems += _request_problems(shape.value, item, f"{where}.{key}")
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"Value at '{where}' failed to satisfy constraint: Member must be a string"]
        problems = _length_problems(shape, value, where, "length")
        if shape.enum and value not in shape.enum:
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
        pattern = _pattern(shape.metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}"
            )
        return problems
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"Value at '{where}' failed to satisfy constraint: Member must be an integer"]
        return _range_problems(shape, value, where)
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"Value at '{where}' failed to satisfy constraint: Member must be a number"]
        return _range_problems(shape, value, where)
    if kind == "boolean" and not isinstance(value, bool):
        return [f"Value at '{where}' failed to satisfy constraint: Member must be a boolean"]
    if kind == "timestamp" and not isinstance(value, (int, float, str)):
        return [f"Value at '{where}' failed to satisfy constraint: Member must be a timestamp"]
    return []


def _member_path(path: str, name: str) -> str:
    # AWS names members in lower camel case in its messages ("pipelineExecutionArn").
    member = name[:1].lower() + name[1:]
    return f"{path}.{member}" if path else member


def _length_problems(shape, value, where: str, what: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        return [
            f"Value at '{where}' failed to satisfy constraint: Member must have {what} greater than or equal to {low}"
        ]
    if high is not None and len(value) > high:
        return [
            f"Value at '{where}' failed to satisfy constraint: Member must have {what} less than or equal to {high}"
        ]
    return []


def _range_problems(shape, value, where: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        return [
            f"Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {low}"
        ]
    if high is not None and value > high:
        return [
            f"Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {high}"
        ]
    return []


@functools.cache
def _pattern(text: str | None) -> re.Pattern | None:
    if not text:
        return None
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None  # a Java-only construct (\p{...}): AWS checks it, we cannot; skip rather than refuse


def answer_problems(operation: str, answer: dict[str, Any], service: str = "sagemaker") -> list[str]:
    """Every difference between a wire answer (JSON, timestamps as numbers) and the output shape."""
    shape = operation_model(operation, service).output_shape
    if shape is None:
        return [] if not answer else [f"{operation} has no output, the answer has {sorted(answer)}"]
    return _answer_problems(shape, answer, operation)


def _answer_problems(shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, expected a {shape.name} structure"]
        problems = [
            f"{path}.{name}: required by the model, missing" for name in shape.required_members if name not in value
        ]
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
            elif item is None:
                problems.append(f"{path}.{name}: null (AWS leaves a member out instead)")
            else:
                problems += _answer_problems(member, item, f"{path}.{name}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, expected a list"]
        return [p for index, item in enumerate(value) for p in _answer_problems(shape.member, item, f"{path}[{index}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, expected a map"]
        return [p for key, item in value.items() for p in _answer_problems(shape.value, item, f"{path}[{key}]")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: {type(value).__name__}, expected a string"]
        if shape.enum and value not in shape.enum:
            return [f"{path}: {value!r} is not one of {shape.enum}"]
        return []
    if kind in ("integer", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r}, expected an integer"]
    if kind in ("float", "double"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r}, expected a number"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: {value!r}, expected a boolean"]
    if kind == "timestamp":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r}, expected epoch seconds (AWS JSON 1.1 timestamps)"]
    return []
