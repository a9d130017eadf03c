"""What an EventBridge target receives: its InputPath or InputTransformer applied to the event, as EventBridge does.

    render(target, event, rule_arn=..., ingestion_time=...)   # -> dict/list/str/number: the target's input

Documented behaviour ("Amazon EventBridge input transformation", and the InputTransformer API reference):
- `Input` is a constant JSON document; `InputPath` selects a part of the event (`$.detail`).
- `InputTransformer.InputPathsMap` names values of the event by JSON path (dot notation, dashes, array
  indices); `InputTemplate` uses them as `<name>`. Predefined: `aws.events.rule-arn`, `aws.events.rule-name`,
  `aws.events.event.ingestion-time`, `aws.events.event` (the event without `detail`) and
  `aws.events.event.json` (the whole event).
- A template that is a JSON object (it starts with `{`) is a JSON document: a placeholder used as a value is
  the value as JSON (a string gets its quotes); inside a string literal the value's text is inserted as is.
  Values are not escaped, as EventBridge says: a value that breaks the JSON fails the delivery (here, with the
  parse error) instead of being sent half-formed.
- Any other template is text: each placeholder becomes the value's text (a string without quotes). When every
  non-empty line is a quoted string, the documented multi-line form, each line is decoded and the lines are
  joined with newlines (what an e-mail subscriber reads); otherwise the text is sent as it is.
- A path that matches nothing creates no variable: its placeholder becomes nothing in text and `null` as a
  JSON value (so the document stays valid).
"""

from __future__ import annotations

import json
import re
from typing import Any

PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


class TransformError(ValueError):
    pass


def render(target: dict[str, Any], event: dict[str, Any], *, rule_arn: str = "", ingestion_time: str = "") -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        value = select(event, target["InputPath"])
        return None if value is _MISSING else value
    transformer = target.get("InputTransformer")
    if transformer is None:
        return event
    variables = {name: select(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()}
    variables |= {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_arn.rsplit("/", 1)[-1],
        "aws.events.event.ingestion-time": ingestion_time or event.get("time", ""),
        "aws.events.event": {key: value for key, value in event.items() if key != "detail"},
        "aws.events.event.json": event,
    }
    template = transformer["InputTemplate"]
    if template.lstrip().startswith("{"):
        return _render_json(template, variables)
    return _render_text(template, variables)


def select(document: Any, path: str) -> Any:
    """The value at a JSON path such as `$.detail.ModelMetrics.ModelQuality` or `$.resources[0]`."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise TransformError(f"JSON path {path!r} must start with '$.'")
    value = document
    for key, index in PATH_PART.findall(path[2:]):
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return _MISSING
    return value


def _text(value: Any) -> str:
    if value is _MISSING:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _render_json(template: str, variables: dict[str, Any]) -> Any:
    pieces, in_string, escaped, position = [], False, False, 0
    # Walk the template once, tracking whether each placeholder sits inside a JSON string literal.
    for index, char in enumerate(template):
        if index < position:
            continue
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        if char == "<":
            match = PLACEHOLDER.match(template, index)
            if match and match[1] in variables:
                value = variables[match[1]]
                if in_string:
                    pieces.append(_text(value))
                else:
                    pieces.append("null" if value is _MISSING else json.dumps(value))
                position = match.end()
                continue
        pieces.append(char)
    rendered = "".join(pieces)
    try:
        return json.loads(rendered)
    except ValueError as error:
        raise TransformError(f"the InputTemplate did not render valid JSON ({error}): {rendered[:300]}") from error


def _render_text(template: str, variables: dict[str, Any]) -> str:
    rendered = PLACEHOLDER.sub(lambda m: _text(variables[m[1]]) if m[1] in variables else m[0], template)
    lines = [line.strip() for line in rendered.strip().splitlines()]
    if lines and all(len(line) >= 2 and line[0] == line[-1] == '"' for line in lines if line):
        try:
            return "\n".join(json.loads(line) if line else "" for line in lines)
        except ValueError:
            pass  # not the quoted-lines form after all: send the text as written
    return rendered
