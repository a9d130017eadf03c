"""Metric math for alarms (an alarm's `Metrics`), as CloudWatch documents it ("Using metric math").

An alarm on metric math names its queries in `Metrics`: `MetricStat` queries read a metric (Namespace,
MetricName, Dimensions, Stat, Period, Unit) and `Expression` queries compute on them by `Id`; exactly one query
has `ReturnData` true, and the alarm compares that one's value with its threshold, period by period.

What is evaluated here, with CloudWatch's semantics for each:
- `METRICS()` is every MetricStat query of the alarm ("returns all metrics in the request"; math expressions are
  not included); `METRICS("text")` only those whose Id contains `text`;
- `[e1, e2, ...]` is an array of time series;
- `MAX`, `MIN`, `SUM`, `AVG` of an array of time series give one time series: at each timestamp the maximum,
  minimum, sum or average of the series that have a value there (a series without a datapoint is left out; none
  at all: no datapoint);
- numbers, `Id` references, `+ - * /` and parentheses, point by point: a timestamp missing in an operand has no
  result, nor does a division by zero.
Anything else (other functions, `MAX(m1)` of a single series, which CloudWatch reduces to one scalar over the
whole range, `SEARCH`, `INSIGHT_RULE_METRIC`, ...) raises `Unsupported`: the alarm is then refused, logged and
set to INSUFFICIENT_DATA, never evaluated on a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Value = float | None
TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\"[^\"]*\")|(.))")
ARRAY_FUNCTIONS: dict[str, Callable[[list[float]], float]] = {
    "MAX": max,
    "MIN": min,
    "SUM": sum,
    "AVG": lambda values: sum(values) / len(values),
}


class Unsupported(ValueError):
    """An expression the local evaluator does not compute; the message names what and why."""


class _Array(list):
    """An array of time series (values of one period), as METRICS() and [..] give."""


def _tokens(expression: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(expression):
        match = TOKEN.match(expression, position)
        if not match or match.end() == position:
            break
        position = match.end()
        number, name, text, symbol = match.groups()
        if number is not None:
            found.append(("number", number))
        elif name is not None:
            found.append(("name", name))
        elif text is not None:
            found.append(("text", text[1:-1]))
        elif symbol is not None and symbol.strip():
            found.append(("symbol", symbol))
    return found


class _Parser:
    """Recursive descent over the supported grammar; evaluates for one period against `values` (Id -> value)."""

    def __init__(self, expression: str, values: dict[str, Value], metric_ids: list[str]):
        self.expression = expression
        self.tokens = _tokens(expression)
        self.position = 0
        self.values = values
        self.metric_ids = metric_ids

    def parse(self) -> Value:
        result = self._sum()
        if self.position != len(self.tokens):
            raise Unsupported(f"{self.expression!r}: unexpected {self.tokens[self.position][1]!r}")
        if isinstance(result, _Array):
            raise Unsupported(f"{self.expression!r} is an array of time series: an alarm needs one time series")
        return result

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, symbol: str) -> None:
        token = self._peek()
        if token != ("symbol", symbol):
            found = token[1] if token else "the end"
            raise Unsupported(f"{self.expression!r}: expected {symbol!r}, found {found!r}")
        self.position += 1

    def _sum(self):
        left = self._product()
        while self._peek() in (("symbol", "+"), ("symbol", "-")):
            operator = self._peek()[1]
            self.position += 1
            left = _arithmetic(operator, left, self._product(), self.expression)
        return left

    def _product(self):
        left = self._unary()
        while self._peek() in (("symbol", "*"), ("symbol", "/")):
            operator = self._peek()[1]
            self.position += 1
            left = _arithmetic(operator, left, self._unary(), self.expression)
        return left

    def _unary(self):
        if self._peek() == ("symbol", "-"):
            self.position += 1
            return _arithmetic("*", -1.0, self._unary(), self.expression)
        return self._atom()

    def _atom(self):
        token = self._peek()
        if token is None:
            raise Unsupported(f"{self.expression!r}: ends too early")
        kind, text = token
        self.position += 1
        if kind == "number":
            return float(text)
        if kind == "symbol" and text == "(":
            inner = self._sum()
            self._take(")")
            return inner
        if kind == "symbol" and text == "[":
            items = [self._sum()]
            while self._peek() == ("symbol", ","):
                self.position += 1
                items.append(self._sum())
            self._take("]")
            if any(isinstance(item, _Array) for item in items):
                raise Unsupported(f"{self.expression!r}: nested arrays of time series")
            return _Array(items)
        if kind == "name" and self._peek() == ("symbol", "("):
            return self._call(text)
        if kind == "name":
            if text not in self.values:
                raise Unsupported(f"{self.expression!r}: no query has the Id {text!r}")
            return self.values[text]
        raise Unsupported(f"{self.expression!r}: {text!r} is not supported")

    def _call(self, function: str):
        self._take("(")
        name = function.upper()
        if name == "METRICS":
            pattern = ""
            if self._peek() and self._peek()[0] == "text":
                pattern = self._peek()[1]
                self.position += 1
            self._take(")")
            return _Array(self.values[i] for i in self.metric_ids if pattern in i)
        if name not in ARRAY_FUNCTIONS:
            raise Unsupported(
                f"{self.expression!r}: the function {function} is not evaluated locally "
                f"(supported: METRICS, {', '.join(ARRAY_FUNCTIONS)} of an array, + - * /)"
            )
        argument = self._sum()
        self._take(")")
        if not isinstance(argument, _Array):
            raise Unsupported(
                f"{self.expression!r}: {name} of a single time series is one scalar over the whole range in "
                "CloudWatch, not evaluated locally; use an array ([m1, m2] or METRICS())"
            )
        present = [value for value in argument if value is not None]
        return ARRAY_FUNCTIONS[name](present) if present else None


def _arithmetic(operator: str, left, right, expression: str) -> Value:
    if isinstance(left, _Array) or isinstance(right, _Array):
        raise Unsupported(f"{expression!r}: arithmetic on an array of time series is not evaluated locally")
    if left is None or right is None:
        return None
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    return None if right == 0 else left / right


def check(queries: list[dict]) -> dict:
    """The query the alarm compares (ReturnData true); raises Unsupported for a shape this module cannot run."""
    returned = [query for query in queries if query.get("ReturnData", True)]
    if len(returned) != 1:
        raise Unsupported(f"{len(returned)} queries have ReturnData true: an alarm needs exactly one")
    ids = [query["Id"] for query in queries]
    if len(set(ids)) != len(ids):
        raise Unsupported(f"query Ids {ids} are not unique")
    for query in queries:
        if "Expression" not in query and "MetricStat" not in query:
            raise Unsupported(f"query {query['Id']} has neither Expression nor MetricStat")
    if not any("MetricStat" in query for query in queries):
        raise Unsupported("no MetricStat query: nothing to read")
    return returned[0]


def evaluate(queries: list[dict], metric_values: dict[str, Value]) -> Value:
    """The returned query's value for one period, from the MetricStat queries' values of that period."""
    returned = check(queries)
    values: dict[str, Value] = dict(metric_values)
    metric_ids = [query["Id"] for query in queries if "MetricStat" in query]
    pending = [query for query in queries if "Expression" in query]
    # Expressions may refer to each other: evaluate each once all it names are known.
    for _ in range(len(pending) + 1):
        if not pending:
            break
        waiting = []
        for query in pending:
            names = {text for kind, text in _tokens(query["Expression"]) if kind == "name"}
            unknown = {n for n in names if n.upper() not in ARRAY_FUNCTIONS and n.upper() != "METRICS"} - set(values)
            if unknown & {q["Id"] for q in pending}:
                waiting.append(query)
                continue
            values[query["Id"]] = _Parser(query["Expression"], values, metric_ids).parse()
        if len(waiting) == len(pending):
            raise Unsupported(f"expressions {[q['Id'] for q in waiting]} refer to each other in a cycle")
        pending = waiting
    return values[returned["Id"]]
