"""Metric math as CloudWatch documents it, for the expressions the project's templates use (MAX(METRICS()))."""

from __future__ import annotations

import pytest

from local_aws.cloudwatch import metric_math


def stat(query_id: str, metric: str = "feature_baseline_drift_length") -> dict:
    return {
        "Id": query_id,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {"Namespace": "aws/sagemaker/Endpoints/data-metrics", "MetricName": metric},
            "Stat": "Maximum",
            "Period": 3600,
        },
    }


def expression(text: str, query_id: str = "e") -> dict:
    return {"Id": query_id, "Expression": text, "ReturnData": True}


def test_max_of_metrics_is_the_largest_value_present_in_the_period():
    queries = [expression("MAX(METRICS())"), stat("m0"), stat("m1"), stat("m2")]
    assert metric_math.evaluate(queries, {"m0": 0.02, "m1": 0.31, "m2": None}) == 0.31
    assert metric_math.evaluate(queries, {"m0": None, "m1": None, "m2": None}) is None  # no datapoint at all


def test_the_other_array_functions_arithmetic_and_metrics_filters():
    queries = [stat("errors5xx"), stat("errors4xx"), stat("calls")]
    values = {"errors5xx": 3.0, "errors4xx": 1.0, "calls": 200.0}
    run = lambda text: metric_math.evaluate([expression(text), *queries], values)  # noqa: E731
    assert run('SUM(METRICS("errors"))') == 4.0
    assert run("MIN([errors5xx, errors4xx])") == 1.0
    assert run("AVG(METRICS())") == pytest.approx(68.0)
    assert run("100 * (errors5xx + errors4xx) / calls") == 2.0
    assert run("-errors5xx + 1") == -2.0
    assert run("errors5xx / 0") is None  # no value, as CloudWatch drops a division by zero
    assert metric_math.evaluate([expression("calls - errors5xx"), *queries], {**values, "errors5xx": None}) is None


def test_expressions_may_refer_to_expressions():
    queries = [stat("a"), stat("b"), {"Id": "total", "Expression": "a + b", "ReturnData": False}]
    queries.append(expression("total * 2", "doubled"))
    assert metric_math.evaluate(queries, {"a": 1.0, "b": 2.0}) == 6.0


@pytest.mark.parametrize(
    ("queries", "named"),
    [
        ([expression("ANOMALY_DETECTION_BAND(m0)"), stat("m0")], "function ANOMALY_DETECTION_BAND is not evaluated"),
        ([expression("MAX(m0)"), stat("m0")], "MAX of a single time series is one scalar"),
        ([expression("METRICS()"), stat("m0")], "an alarm needs one time series"),
        ([expression("m9 * 2"), stat("m0")], "no query has the Id 'm9'"),
        ([expression("m0 +"), stat("m0")], "ends too early"),
        ([stat("m0"), stat("m1")], "0 queries have ReturnData true"),
        ([expression("SEARCH('{AWS/EC2} CPU', 'Average')")], "no MetricStat query"),
    ],
)
def test_what_it_cannot_compute_is_refused_naming_why(queries, named):
    with pytest.raises(metric_math.Unsupported, match=named.replace("(", r"\(")):
        metric_math.evaluate(queries, {q["Id"]: 1.0 for q in queries if "MetricStat" in q})


def _alarms_with_metric_math() -> dict[str, list[dict]]:
    """Every AWS::CloudWatch::Alarm with `Metrics` in the project's templates: name -> its queries, each
    `Fn::If [condition, query, AWS::NoValue]` slot taken as its query (the slot of a watched feature)."""
    from pathlib import Path

    from cfnlint.decode import cfn_yaml

    root = Path(__file__).resolve().parents[2]
    paths = [*sorted((root / "cloudformation").glob("*.yml")), *sorted((root / "model-deploy").glob("*template.yml"))]
    found = {}
    for path in paths:
        for name, resource in cfn_yaml.load(str(path)).get("Resources", {}).items():
            queries = (
                resource.get("Properties", {}).get("Metrics") if resource["Type"] == "AWS::CloudWatch::Alarm" else None
            )
            if queries:
                found[f"{path.name}:{name}"] = [q["Fn::If"][1] if "Fn::If" in q else q for q in queries]
    return found


def test_every_metric_math_alarm_in_the_templates_is_one_the_local_stack_evaluates():
    alarms = _alarms_with_metric_math()
    assert "endpoint-config-template.yml:DataDriftAlarm" in alarms  # the drift alarm: MAX(METRICS())
    for name, queries in alarms.items():
        metric_ids = [q["Id"] for q in queries if "MetricStat" in q]
        values = {query_id: 0.01 * (i + 1) for i, query_id in enumerate(metric_ids)}
        assert metric_math.evaluate(queries, values) is not None, name
    drift = alarms["endpoint-config-template.yml:DataDriftAlarm"]
    slots = [q["Id"] for q in drift if "MetricStat" in q]
    assert len(slots) == 10  # one a feature: the ten encoded features of the model's input
    assert metric_math.evaluate(drift, dict.fromkeys(slots, 0.02) | {"m7": 0.4}) == 0.4
