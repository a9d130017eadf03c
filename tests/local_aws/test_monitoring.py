"""Operations on the local stack: data capture, CloudWatch alarm evaluation, and a Model Monitor execution.

The end-to-end test is the loop a production endpoint runs: drifted traffic is captured, a data-quality
execution against the deployed package's DriftCheckBaselines finds the drift, publishes its metrics, the
drift alarm goes to ALARM and its message reaches the alert topic's outbox.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import random

import numpy as np
import pandas as pd
import pytest

from local_aws.sagemaker.executor import images
from local_aws.sagemaker.monitoring import NAMESPACE, local_operation, run
from local_aws.sagemaker_runtime import capture
from local_aws.sns import outbox

from .conftest import ABALONE_CSV, FEATURES, ROLE_ARN, XGBOOST_IMAGE

BUCKET = "sagemaker-local-artifacts"
CSV_CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": f"s3://{BUCKET}/datacapture/tests",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
}


class RecordingS3:
    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket, Key, Body, **_):  # noqa: N803 - boto3's parameter names
        self.objects[f"{Bucket}/{Key}"] = Body


def capture_with(clock_at: dt.datetime, sample=lambda: 0.0):
    s3 = RecordingS3()
    return capture.DataCapture(lambda: s3, clock=lambda: clock_at, sample=sample), s3


# Data capture, the format.
def test_a_captured_request_has_the_documented_record_and_path():
    moment = dt.datetime(2026, 12, 1, 10, 5, 7, 123000, tzinfo=dt.UTC)
    data_capture, s3 = capture_with(moment)

    assert data_capture.record(
        CSV_CAPTURE, "abalone-prod", "AllTraffic", (b"1,2\n3,4", "text/csv"), (b"9.5\n8.5", "text/csv")
    )
    (uri,) = data_capture.flush()

    (key,) = s3.objects
    assert uri == f"s3://{key}"
    prefix = f"{BUCKET}/datacapture/tests/abalone-prod/AllTraffic/2026/12/01/10/05-07-123-"
    assert key.startswith(prefix) and key.endswith(".jsonl")
    (line,) = s3.objects[key].decode().splitlines()
    record = json.loads(line)
    assert record["eventVersion"] == "0"
    assert record["captureData"] == {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2\n3,4", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "9.5\n8.5", "encoding": "CSV"},
    }
    assert record["eventMetadata"]["inferenceTime"] == "2026-12-01T10:05:07Z"
    assert len(record["eventMetadata"]["eventId"]) == 36


def test_content_types_not_listed_are_base64_and_input_only_captures_no_output():
    data_capture, s3 = capture_with(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    config = {**CSV_CAPTURE, "CaptureOptions": [{"CaptureMode": "Input"}]}
    config.pop("CaptureContentTypeHeader")

    data_capture.record(config, "e", "v", (b"1,2", "text/csv"), (b"3", "text/csv"))
    data_capture.flush()

    record = json.loads(next(iter(s3.objects.values())))
    assert set(record["captureData"]) == {"endpointInput"}
    assert record["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert capture.decode(record["captureData"]["endpointInput"]) == b"1,2"


def test_sampling_follows_the_percentage_and_disabled_capture_writes_nothing():
    sampler = random.Random(7)  # noqa: S311 - sampling, as SageMaker samples: no secret
    data_capture, s3 = capture_with(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), sample=sampler.random)
    config = {**CSV_CAPTURE, "InitialSamplingPercentage": 30}

    taken = sum(data_capture.record(config, "e", "v", (b"1", "text/csv"), (b"2", "text/csv")) for _ in range(4000))
    assert 0.27 < taken / 4000 < 0.33
    for off in ({**CSV_CAPTURE, "EnableCapture": False}, {**CSV_CAPTURE, "InitialSamplingPercentage": 0}, None):
        assert not data_capture.record(off, "e", "v", (b"1", "text/csv"), (b"2", "text/csv"))

    data_capture.flush()
    assert sum(len(body.splitlines()) for body in s3.objects.values()) == taken


def test_records_of_different_hours_go_to_their_hour_folders():
    s3 = RecordingS3()
    moments = iter([dt.datetime(2026, 12, 1, 10, 59, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, 11, 0, tzinfo=dt.UTC)])
    data_capture = capture.DataCapture(lambda: s3, clock=lambda: next(moments), sample=lambda: 0.0)
    for _ in range(2):
        data_capture.record(CSV_CAPTURE, "e", "v", (b"1", "text/csv"), (b"2", "text/csv"))
    data_capture.flush()
    assert sorted(key.split("/")[-2] for key in s3.objects) == ["10", "11"]


# On the stack: capture, alarms, a monitoring execution.
def _analyzer():
    spec = importlib.util.spec_from_file_location("model_monitor_analyzer", images.LOCKS / "model_monitor_analyzer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(value)) for value in row) for row in rows).encode()


@pytest.fixture(scope="module")
def encoded_splits(tmp_path_factory) -> dict:
    """model-build's own preprocess.py on the real data: the registered baseline file and the test split."""
    from pipelines.abalone import preprocess

    folder = tmp_path_factory.mktemp("preprocess")
    argv = ["--input-dir", str(ABALONE_CSV), "--output-dir", str(folder), "--seed", "42"]
    assert preprocess.main(argv) == 0
    test = pd.read_csv(folder / "test" / "test.csv", header=None)
    return {"baseline": folder / "baseline", "features": test.iloc[:, 1:].to_numpy(), "labels": test[0].to_numpy()}


@pytest.fixture(scope="module")
def monitored_model(clients, upload_model, abalone, train, encoded_splits):
    """A model serving a package whose DriftCheckBaselines are the analyzer's over model-build's baseline file
    (the encoded features with their header, as the DataQualityCheck step computes them)."""
    features, rings = abalone
    analyzer = _analyzer()
    frame = analyzer.read_dataset(str(encoded_splits["baseline"]), {"csv": {"header": True}})
    statistics = analyzer.data_statistics(frame)
    constraints = analyzer.data_constraints(statistics)
    assert [f["name"] for f in constraints["features"]] == FEATURES  # the model's input, in its order
    for name, document in (("statistics", statistics), ("constraints", constraints)):
        clients.s3.put_object(Bucket=BUCKET, Key=f"tests/monitored/{name}.json", Body=json.dumps(document).encode())
    uri = f"s3://{BUCKET}/tests/monitored"
    model_url = upload_model("monitored", train(features[:2000], rings[:2000], rounds=10))
    package = clients.sagemaker.create_model_package(
        ModelPackageGroupName="abalone",
        InferenceSpecification={
            "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": model_url}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{uri}/statistics.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"{uri}/constraints.json"},
            }
        },
    )
    clients.sagemaker.create_model(
        ModelName="monitored-model",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"ModelPackageName": package["ModelPackageArn"]},
    )
    return "monitored-model"


def _endpoint(clients, model: str, name: str) -> str:
    """An endpoint of its own (its own captured traffic) serving the monitored model."""
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1}
    clients.sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}],
        DataCaptureConfig={**CSV_CAPTURE, "DestinationS3Uri": f"s3://{BUCKET}/datacapture/{name}"},
    )
    clients.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return name


@pytest.fixture(scope="module")
def monitored_endpoint(clients, monitored_model):
    return _endpoint(clients, monitored_model, "monitored")


def _serve(clients, endpoint: str, rows: np.ndarray) -> None:
    for start in range(0, len(rows), 50):  # as a client sends them: headerless CSV, 50 rows a request
        clients.runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=_csv(rows[start : start + 50])
        )


def _captured(clients, prefix: str) -> list[dict]:
    listed = clients.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    bodies = [clients.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed]
    return [json.loads(line) for body in bodies for line in body.splitlines()]


def test_invocations_are_captured_to_the_configured_destination(clients, local_stack, monitored_endpoint, abalone):
    features, _ = abalone
    body = _csv(features[3000:3003])
    answer = clients.runtime.invoke_endpoint(EndpointName=monitored_endpoint, ContentType="text/csv", Body=body)
    predictions = answer["Body"].read().decode()

    written = local_operation(local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"], capture.FLUSH_OPERATION)["Files"]

    assert written and all(
        uri.startswith(f"s3://{BUCKET}/datacapture/monitored/monitored/AllTraffic/") for uri in written
    )
    records = _captured(clients, "datacapture/monitored/monitored/AllTraffic/")
    assert any(
        r["captureData"]["endpointInput"]["data"] == body.decode()
        and r["captureData"]["endpointOutput"]["data"] == predictions
        for r in records
    )


def _alarm(clients_cloudwatch, name: str, topic_arn: str, metric: str, dimensions: list, **extra) -> None:
    clients_cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=extra.pop("Namespace", NAMESPACE),
        MetricName=metric,
        Dimensions=dimensions,
        Statistic="Maximum",
        Period=extra.pop("Period", 3600),
        EvaluationPeriods=1,
        Threshold=extra.pop("Threshold", 0.1),
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData=extra.pop("TreatMissingData", "notBreaching"),
        AlarmActions=[topic_arn],
        OKActions=[topic_arn],
        **extra,
    )


def test_alarms_follow_their_metric_at_the_injected_time_and_notify_each_change_once(local_stack):
    cloudwatch, client = local_stack.client("cloudwatch"), local_stack.client
    topic_arn, queue = outbox.ensure(client, "alarm-clock-tests")
    gateway = local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"]
    dimensions = [{"Name": "EndpointName", "Value": "clock"}]
    _alarm(cloudwatch, "clock-errors", topic_arn, "Errors", dimensions, Namespace="Tests", Period=60, Threshold=1)
    moment = dt.datetime(2026, 12, 1, 9, 0, 30, tzinfo=dt.UTC)
    cloudwatch.put_metric_data(
        Namespace="Tests",
        MetricData=[{"MetricName": "Errors", "Dimensions": dimensions, "Value": 5, "Timestamp": moment}],
    )

    def evaluate(at: dt.datetime) -> list[dict]:
        changes = local_operation(gateway, "LocalAws.EvaluateAlarms", {"Time": at.timestamp()})["StateChanges"]
        return [change for change in changes if change["AlarmName"] == "clock-errors"]

    first = evaluate(moment + dt.timedelta(seconds=20))
    again = evaluate(moment + dt.timedelta(seconds=25))  # still breaching: no second notification
    later = evaluate(moment + dt.timedelta(minutes=10))  # no data since: notBreaching -> OK

    assert [c["NewStateValue"] for c in first] == ["ALARM"] and first[0]["Notified"] == [topic_arn]
    assert again == []
    assert [c["NewStateValue"] for c in later] == ["OK"]
    assert cloudwatch.describe_alarms(AlarmNames=["clock-errors"])["MetricAlarms"][0]["StateValue"] == "OK"
    messages = [json.loads(m.text) for m in outbox.drain(client, queue)]
    assert [m["NewStateValue"] for m in messages] == ["ALARM", "OK"]
    assert messages[0]["OldStateValue"] != "ALARM"
    assert messages[0]["Trigger"]["MetricName"] == "Errors"
    assert messages[0]["Trigger"]["Dimensions"] == [{"value": "clock", "name": "EndpointName"}]
    assert messages[0]["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [5.0")


def test_clean_traffic_gives_no_violation_against_the_registered_baseline(
    local_stack, clients, monitored_model, encoded_splits
):
    # The held-out test split, sent as a client sends it (no header, no label): the same population as the
    # baseline's training rows, so nothing is flagged, no column missing, extra or mistyped.
    endpoint = _endpoint(clients, monitored_model, "monitored-clean")
    _serve(clients, endpoint, encoded_splits["features"])

    report = run(endpoint, environ=local_stack.environ())

    assert report["Violations"] == []
    assert set(report["Metrics"]) == {f"feature_baseline_drift_{name}" for name in FEATURES}
    assert max(report["Metrics"].values()) < 0.1


def test_drifted_traffic_gives_violations_metrics_an_alarm_and_a_message(
    local_stack, clients, monitored_endpoint, encoded_splits
):
    client = local_stack.client
    topic_arn, queue = outbox.ensure(client, "drift-tests")
    schedule = "monitored-data-quality"
    dimensions = [{"Name": "Endpoint", "Value": monitored_endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
    _alarm(
        local_stack.client("cloudwatch"),
        "monitored-drift-length",
        topic_arn,
        "feature_baseline_drift_length",
        dimensions,
    )
    drifted = encoded_splits["features"].copy()
    drifted[:, 0] *= 1.6  # length: 60% longer abalone than the model was trained on
    _serve(clients, monitored_endpoint, drifted)

    report = run(monitored_endpoint, schedule, environ=local_stack.environ())

    # The captured columns carry the baseline's names (by position): the violation names the feature.
    drift = {v["feature_name"] for v in report["Violations"] if v["constraint_check_type"] == "baseline_drift_check"}
    assert drift == {"length"}
    assert {v["constraint_check_type"] for v in report["Violations"]} == {"baseline_drift_check"}
    report_file = f"{report['Output'].removeprefix(f's3://{BUCKET}/')}/constraint_violations.json"
    stored = json.loads(clients.s3.get_object(Bucket=BUCKET, Key=report_file)["Body"].read())
    assert stored["violations"] == report["Violations"]
    assert report["Metrics"]["feature_baseline_drift_length"] > 0.1
    assert set(report["Metrics"]) == {f"feature_baseline_drift_{name}" for name in FEATURES}
    published = local_stack.client("cloudwatch").list_metrics(
        Namespace=NAMESPACE, MetricName="feature_baseline_drift_length"
    )
    assert any(
        sorted(d["Name"] for d in m["Dimensions"]) == ["Endpoint", "MonitoringSchedule"] for m in published["Metrics"]
    )
    changes = {c["AlarmName"]: c["NewStateValue"] for c in report["AlarmStateChanges"]}
    assert changes.get("monitored-drift-length") == "ALARM"
    (message,) = [m for m in outbox.drain(client, queue) if json.loads(m.text)["AlarmName"] == "monitored-drift-length"]
    assert message.subject == 'ALARM: "monitored-drift-length" in US East (N. Virginia)'
    body = json.loads(message.text)
    assert body["NewStateValue"] == "ALARM" and body["Trigger"]["Namespace"] == NAMESPACE


def test_headerless_columns_take_the_baseline_names_by_position_and_the_rest_are_extra_or_missing():
    analyzer = _analyzer()
    constraints = {"features": [{"name": n, "inferred_type": "Fractional"} for n in ("length", "height", "sex_F")]}
    frame = pd.DataFrame([["0.5", "0.1"]], columns=["_c0", "_c1"])
    assert list(analyzer.name_by_baseline(frame, constraints, headerless=True).columns) == ["length", "height"]
    wide = pd.DataFrame([["1", "2", "3", "4"]], columns=[f"_c{i}" for i in range(4)])
    assert list(analyzer.name_by_baseline(wide, constraints, headerless=True).columns) == [
        "length",
        "height",
        "sex_F",
        "_c3",
    ]
    named = pd.DataFrame([["0.5"]], columns=["diameter"])  # a header is the data's own: never renamed
    assert list(analyzer.name_by_baseline(named, constraints, headerless=False).columns) == ["diameter"]
    checks = {
        v["constraint_check_type"]: v["feature_name"]
        for v in analyzer.data_violations(analyzer.name_by_baseline(frame, constraints, True), {}, constraints)
    }
    assert checks == {"missing_column_check": "sex_F"}


def test_base64_captures_are_read_by_the_analyzer(tmp_path):
    analyzer = _analyzer()
    line = {"captureData": {"endpointInput": {"data": base64.b64encode(b"1,2\n3,4").decode(), "encoding": "BASE64"}}}
    (tmp_path / "a.jsonl").write_text(json.dumps(line) + "\n")
    frame = analyzer.read_dataset(str(tmp_path), {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}})
    assert frame.to_dict("list") == {"_c0": ["1", "3"], "_c1": ["2", "4"]}


def test_capturing_a_request_writes_nothing_on_the_request_thread():
    # The runtime's p50 budget (make bench) holds only if a request never waits for S3: records are buffered,
    # and the files are written by the flush (the background thread's), not by record().
    data_capture, s3 = capture_with(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    body = b"0.5,0.4,0.1,0.5,0.2,0.1,0.15,0.0,0.0,1.0"
    for _ in range(100):
        data_capture.record(CSV_CAPTURE, "e", "AllTraffic", (body, "text/csv"), (b"9.5", "text/csv"))
    assert s3.objects == {}
    (uri,) = data_capture.flush()
    assert len(s3.objects[uri.removeprefix("s3://")].decode().splitlines()) == 100


def test_a_metric_math_alarm_goes_to_alarm_and_notifies_and_an_unsupported_one_is_refused(local_stack):
    # The endpoint template's drift alarm: MAX(METRICS()) over one feature_baseline_drift_<feature> a feature.
    cloudwatch, client = local_stack.client("cloudwatch"), local_stack.client
    topic_arn, queue = outbox.ensure(client, "metric-math-tests")
    gateway = local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"]
    dimensions = [{"Name": "Endpoint", "Value": "math"}, {"Name": "MonitoringSchedule", "Value": "math-data-quality"}]

    def drift(query_id: str, feature: str) -> dict:
        metric = {"Namespace": NAMESPACE, "MetricName": f"feature_baseline_drift_{feature}", "Dimensions": dimensions}
        return {
            "Id": query_id,
            "ReturnData": False,
            "MetricStat": {"Metric": metric, "Stat": "Maximum", "Period": 3600},
        }

    def alarm(name: str, expression: str) -> None:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Metrics=[
                {
                    "Id": "drift",
                    "Label": "largest feature_baseline_drift",
                    "Expression": expression,
                    "ReturnData": True,
                },
                drift("m0", "length"),
                drift("m1", "height"),
            ],
            EvaluationPeriods=1,
            Threshold=0.1,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[topic_arn],
            OKActions=[topic_arn],
            InsufficientDataActions=[topic_arn],
        )

    alarm("math-drift", "MAX(METRICS())")
    alarm("math-unsupported", "ANOMALY_DETECTION_BAND(m0, 2)")
    cloudwatch.set_alarm_state(AlarmName="math-unsupported", StateValue="OK", StateReason="test")
    moment = dt.datetime.now(dt.UTC)
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "feature_baseline_drift_length",
                "Dimensions": dimensions,
                "Value": 0.04,
                "Timestamp": moment,
            },
            {
                "MetricName": "feature_baseline_drift_height",
                "Dimensions": dimensions,
                "Value": 0.37,
                "Timestamp": moment,
            },
        ],
    )

    local_operation(gateway, "LocalAws.EvaluateAlarms", {"Time": moment.timestamp() + 1})

    # Asserted on the stored states and the messages: the stack's periodic evaluator may have made the change.
    stored = cloudwatch.describe_alarms(AlarmNames=["math-drift", "math-unsupported"])["MetricAlarms"]
    states = {a["AlarmName"]: (a["StateValue"], a["StateReason"]) for a in stored}
    assert states["math-drift"][0] == "ALARM"
    assert "[0.37 (" in states["math-drift"][1]  # the largest of the two, not the first
    assert states["math-unsupported"][0] == "INSUFFICIENT_DATA"
    assert "ANOMALY_DETECTION_BAND is not evaluated locally" in states["math-unsupported"][1]
    sent = [json.loads(m.text) for m in outbox.drain(client, queue)]
    messages = {(m["AlarmName"], m["NewStateValue"]): m for m in sent}
    trigger = messages["math-drift", "ALARM"]["Trigger"]
    assert [q["Id"] for q in trigger["Metrics"]] == ["drift", "m0", "m1"]
    assert trigger["Metrics"][0]["Expression"] == "MAX(METRICS())"
    assert trigger["Metrics"][2]["MetricStat"]["Metric"]["MetricName"] == "feature_baseline_drift_height"
    assert "Not evaluated by the local stack" in messages["math-unsupported", "INSUFFICIENT_DATA"]["NewStateReason"]


def test_the_endpoint_templates_drift_alarm_is_made_by_its_stack_and_notifies_the_topic(local_stack):
    # The real template's DataDriftAlarm (with its parameters and conditions), deployed through moto's
    # CloudFormation: the stack makes a real alarm (moto alone skips the type), which the evaluator runs.
    from pathlib import Path

    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(Path(__file__).resolve().parents[2] / "model-deploy" / "endpoint-config-template.yml"))
    alarm_only = {key: template[key] for key in ("Parameters", "Conditions", "Mappings")}
    alarm_only["Resources"] = {"DataDriftAlarm": template["Resources"]["DataDriftAlarm"]}
    client, cloudwatch = local_stack.client, local_stack.client("cloudwatch")
    topic_arn, queue = outbox.ensure(client, "template-drift-tests")
    parameters = {
        "SageMakerProjectName": "tmpl",
        "SageMakerProjectId": "p-1",
        "StageName": "prod",
        "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/tmpl/1",
        "ModelExecutionRoleArn": ROLE_ARN,
        "ArtifactBucket": BUCKET,
        "DataQualityBaselineStatistics": f"s3://{BUCKET}/tests/monitored/statistics.json",
        "DataQualityBaselineConstraints": f"s3://{BUCKET}/tests/monitored/constraints.json",
        "MonitoringBaselineId": "0a1b2c3d4e5f6a7b",
        "DriftAlarmFeatures": ",".join(FEATURES),
        "AlertTopicArn": topic_arn,
    }
    declared = set(alarm_only["Parameters"])
    cfn = local_stack.client("cloudformation")
    cfn.create_stack(
        StackName="tmpl-drift",
        TemplateBody=json.dumps(alarm_only),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items() if k in declared],
    )
    try:
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=["tmpl-prod-data-drift"])["MetricAlarms"]
        stats = [q for q in alarm["Metrics"] if "MetricStat" in q]
        assert [q["MetricStat"]["Metric"]["MetricName"] for q in stats] == [
            f"feature_baseline_drift_{f}" for f in FEATURES
        ]
        assert alarm["AlarmActions"] == [topic_arn] and alarm["TreatMissingData"] == "notBreaching"

        dimensions = [
            {"Name": "Endpoint", "Value": "tmpl-prod"},
            {"Name": "MonitoringSchedule", "Value": "tmpl-prod-data-quality"},
        ]
        moment = dt.datetime.now(dt.UTC)
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": f"feature_baseline_drift_{f}",
                    "Dimensions": dimensions,
                    "Value": value,
                    "Timestamp": moment,
                }
                for f, value in (("length", 0.03), ("shell_weight", 0.42))
            ],
        )
        local_operation(
            local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"], "LocalAws.EvaluateAlarms", {"Time": moment.timestamp() + 1}
        )

        (alarm,) = cloudwatch.describe_alarms(AlarmNames=["tmpl-prod-data-drift"])["MetricAlarms"]
        assert alarm["StateValue"] == "ALARM" and "[0.42 (" in alarm["StateReason"]
        sent = [json.loads(m.text) for m in outbox.drain(client, queue)]
        assert [(m["AlarmName"], m["NewStateValue"]) for m in sent] == [("tmpl-prod-data-drift", "ALARM")]
    finally:
        cfn.delete_stack(StackName="tmpl-drift")
    assert cloudwatch.describe_alarms(AlarmNames=["tmpl-prod-data-drift"])["MetricAlarms"] == []
