"""One Model Monitor data-quality execution over an endpoint's captured data, as a MonitoringSchedule runs it.

    scripts/local-stack monitor ENDPOINT [--schedule NAME]        (or: python -m local_aws.sagemaker.monitoring)

What SageMaker does each scheduled hour, done once on demand:
1. the endpoint's captured requests (its config's DataCaptureConfig: `<DestinationS3Uri>/<endpoint>/<variant>/`)
   are the job's input `endpoint_input`, read in the capture format (`dataset_format` `sagemakerCaptureJson`);
2. the baselines are the deployed package's DriftCheckBaselines (ModelDataQuality statistics and constraints:
   endpoint -> config -> model -> package), as the endpoint template's DataQualityJobDefinition names them;
3. the job runs the `sagemaker-model-monitor-analyzer` image's program in its sandboxed environment, the same
   analyzer the pipeline's QualityCheck steps run (`images/model_monitor_analyzer.py`), and writes
   statistics.json, constraints.json and constraint_violations.json to
   `s3://<capture bucket>/monitoring-reports/<endpoint>/<schedule>/yyyy/mm/dd/hh/`;
4. the metrics the job writes to `/opt/ml/output/metrics/cloudwatch` are published as SageMaker publishes them:
   namespace `aws/sagemaker/Endpoints/data-metrics`, `feature_baseline_drift_<feature>`, dimensions Endpoint
   and MonitoringSchedule;
5. the stack's alarms are evaluated at once (`LocalAws.EvaluateAlarms`), so an alarm on a drift metric notifies
   its topic now rather than on the evaluator's next round.

Before reading the captures it asks the stack to write the buffered ones (`LocalAws.FlushDataCapture`).
Clients come from the environment (`eval "$(scripts/local-stack env)"`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import tempfile
import urllib.request
from pathlib import Path

from local_aws.sagemaker.executor import s3files, step_types

NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
ANALYZER_IMAGE = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
CAPTURE_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
INPUT_ROOT = "/opt/ml/processing/input/endpoint"
OUTPUT_ROOT = "/opt/ml/processing/output"
BASELINE_ROOT = "/opt/ml/processing/baseline"
METRICS_ROOT = "/opt/ml/output/metrics/cloudwatch"


class MonitoringError(Exception):
    pass


def local_operation(gateway_url: str, operation: str, body: dict | None = None) -> dict:
    """Call one of the stack's own operations (X-Amz-Target `LocalAws.*`) on the gateway."""
    request = urllib.request.Request(  # noqa: S310 - the loopback gateway
        gateway_url.rstrip("/") + "/",
        data=json.dumps(body or {}).encode(),
        headers={"X-Amz-Target": operation, "Content-Type": "application/x-amz-json-1.1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - the loopback gateway
        return json.loads(answer.read() or b"{}")


def deployed_baselines(sagemaker, endpoint: str) -> tuple[dict, dict[str, str]]:
    """(the endpoint config, {"Statistics": uri, "Constraints": uri}) of the package the endpoint serves."""
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    package_name = container.get("ModelPackageName")
    if not package_name:
        raise MonitoringError(f"endpoint {endpoint} serves no model package: no DriftCheckBaselines to check against")
    package = sagemaker.describe_model_package(ModelPackageName=package_name)
    member = (package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    baselines = {kind: member[kind]["S3Uri"] for kind in ("Statistics", "Constraints") if member.get(kind)}
    if "Constraints" not in baselines:
        raise MonitoringError(
            f"model package {package_name} has no DriftCheckBaselines.ModelDataQuality constraints: "
            "register the package with the pipeline's data-quality baseline"
        )
    return config, baselines


def run(
    endpoint: str,
    schedule: str | None = None,
    environ: dict[str, str] | None = None,
    now: dt.datetime | None = None,
    work_dir: Path | None = None,
) -> dict:
    """One monitoring execution; returns its report: violations, metrics, output URI, alarm changes."""
    import boto3
    from botocore.config import Config

    environ = dict(os.environ if environ is None else environ)
    schedule = schedule or f"{endpoint}-data-quality"
    now = now or dt.datetime.now(dt.UTC)
    config = Config(retries={"max_attempts": 1})
    session = boto3.session.Session(
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
    )
    gateway = environ.get("AWS_ENDPOINT_URL_SAGEMAKER")
    sagemaker = session.client("sagemaker", endpoint_url=gateway, config=config)
    s3 = session.client("s3", endpoint_url=environ.get("AWS_ENDPOINT_URL"), config=config)
    cloudwatch = session.client("cloudwatch", endpoint_url=environ.get("AWS_ENDPOINT_URL"), config=config)

    if gateway:
        local_operation(gateway, "LocalAws.FlushDataCapture")
    endpoint_config, baselines = deployed_baselines(sagemaker, endpoint)
    capture = endpoint_config.get("DataCaptureConfig") or {}
    if not capture.get("DestinationS3Uri"):
        raise MonitoringError(f"endpoint {endpoint}'s config {endpoint_config['EndpointConfigName']} captures no data")
    variant = endpoint_config["ProductionVariants"][0]["VariantName"]
    captured = f"{capture['DestinationS3Uri'].rstrip('/')}/{endpoint}/{variant}"
    bucket = capture["DestinationS3Uri"].removeprefix("s3://").split("/", 1)[0]
    output = f"s3://{bucket}/monitoring-reports/{endpoint}/{schedule}/{now:%Y/%m/%d/%H}"

    inputs = [_input("endpoint_input", captured, INPUT_ROOT)]
    environment = {
        "dataset_format": json.dumps(CAPTURE_FORMAT),
        "dataset_source": INPUT_ROOT,
        "output_path": OUTPUT_ROOT,
        "publish_cloudwatch_metrics": "Enabled",
        "sagemaker_endpoint_name": endpoint,
        "sagemaker_monitoring_schedule_name": schedule,
        "start_time": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metric_time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for kind, uri in sorted(baselines.items()):
        folder = f"{BASELINE_ROOT}/{kind.lower()}"
        inputs.append(_input(f"baseline_{kind.lower()}", uri, folder))
        environment[f"baseline_{kind.lower()}"] = f"{folder}/{uri.rstrip('/').rsplit('/', 1)[1]}"
    arguments = {
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
        },
        "AppSpecification": {"ImageUri": ANALYZER_IMAGE},
        "Environment": environment,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {"S3Uri": output, "LocalPath": OUTPUT_ROOT, "S3UploadMode": "EndOfJob"},
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    region = session.region_name
    name = f"model-monitoring-{now:%Y%m%d%H%M}-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="monitoring-", dir=work_dir) as folder:
        job = step_types.Job(
            name=name,
            arn_prefix=f"arn:aws:sagemaker:{region}:{_account(environ)}",
            folder=Path(folder),
            s3=s3,
            sagemaker=sagemaker,
            environment={key: value for key, value in environ.items() if key.startswith("AWS_")},
        )
        try:
            step_types.run_processing(arguments, job)
        except step_types.StepFailure as error:
            raise MonitoringError(f"monitoring execution {name} failed: {error.reason}") from None
        metrics_file = job.host_path(METRICS_ROOT) / "metrics.json"
        metrics = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
    for start in range(0, len(metrics), 20):  # PutMetricData's 20 (classic limit) a call, for any client
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": metric["MetricName"],
                    "Dimensions": metric["Dimensions"],
                    "Timestamp": dt.datetime.fromisoformat(metric["Timestamp"].replace("Z", "+00:00")),
                    "Value": metric["Value"],
                }
                for metric in metrics[start : start + 20]
            ],
        )
    violations = json.loads(s3files.read(s3, f"{output}/constraint_violations.json")).get("violations", [])
    changes = local_operation(gateway, "LocalAws.EvaluateAlarms")["StateChanges"] if gateway else []
    return {
        "MonitoringExecution": name,
        "MonitoringSchedule": schedule,
        "Endpoint": endpoint,
        "CapturedData": captured,
        "Baselines": baselines,
        "Output": output,
        "Violations": violations,
        "Metrics": {metric["MetricName"]: metric["Value"] for metric in metrics},
        "AlarmStateChanges": changes,
    }


def _input(name: str, uri: str, local_path: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File"},
    }


def _account(environ: dict) -> str:
    return environ.get("MOTO_ACCOUNT_ID", "123456789012")


def format_report(report: dict) -> str:
    lines = [
        f"monitoring execution {report['MonitoringExecution']} of {report['Endpoint']} "
        f"(schedule {report['MonitoringSchedule']}): {len(report['Violations'])} violation(s)",
        f"  captured data: {report['CapturedData']}/",
        f"  baseline:      {report['Baselines'].get('Constraints')}",
        f"  reports:       {report['Output']}/",
    ]
    lines += [
        f"  - {v.get('feature_name')}: {v['constraint_check_type']}: {v['description']}" for v in report["Violations"]
    ]
    if report["Metrics"]:
        lines.append(
            f"  metrics ({NAMESPACE}): " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(report["Metrics"].items()))
        )
    for change in report["AlarmStateChanges"]:
        lines.append(f"  alarm {change['AlarmName']}: {change['OldStateValue']} -> {change['NewStateValue']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/local-stack monitor", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("--schedule", default=None, help="monitoring schedule name (default <endpoint>-data-quality)")
    args = parser.parse_args(argv)
    try:
        report = run(args.endpoint, args.schedule)
    except MonitoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
