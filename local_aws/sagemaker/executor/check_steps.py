"""QualityCheck and ClarifyCheck steps: a processing job on the check's image, and the baselines around it.

As SageMaker runs them ("Baseline calculation, drift detection and lifecycle with ClarifyCheck and
QualityCheck steps"):
- the job always computes new baselines from the step's data set (`CalculatedBaseline*`);
- unless SkipCheck, the data set is checked against a baseline: the step's Supplied* files, or else the
  DriftCheckBaselines of the latest Approved package in ModelPackageGroupName for that check type. The baseline
  files are added to the job at run time (inputs `baseline_statistics`/`baseline_constraints`, which are not in the
  definition); violations fail the step when FailOnViolation;
- `BaselineUsedForDriftCheck*` is the calculated baseline when RegisterNewBaseline, else the baseline checked against.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from local_aws.sagemaker.executor import model_steps, s3files, step_types

BASELINE_ROOT = "/opt/ml/processing/baseline"
MODEL_ROOT = "/opt/ml/processing/shadow-endpoint-model"  # a local-stack addition: Clarify would call an endpoint
SHADOW_ENDPOINT_IMAGE = "sagemaker-xgboost:1.7-1"
# Check type -> the DriftCheckBaselines member that holds its baselines, and the files the check writes.
DRIFT_MEMBER = {
    "DATA_QUALITY": "ModelDataQuality",
    "MODEL_QUALITY": "ModelQuality",
    "MODEL_EXPLAINABILITY": "Explainability",
}
CHECK_SETTINGS = (
    "SkipCheck",
    "RegisterNewBaseline",
    "FailOnViolation",
    "SuppliedBaselineStatistics",
    "SuppliedBaselineConstraints",
    "ModelPackageGroupName",
    "ModelName",
)


def settings(step: dict, evaluate: Callable[[Any], Any]) -> dict:
    """The step's check fields (outside Arguments in the definition), resolved like its arguments."""
    resolved = {name: evaluate(step.get(name)) for name in CHECK_SETTINGS if step.get(name) is not None}
    for flag in ("SkipCheck", "RegisterNewBaseline", "FailOnViolation"):
        value = resolved.get(flag, flag == "FailOnViolation")
        resolved[flag] = value if isinstance(value, bool) else str(value).lower() == "true"
    resolved["CheckType"] = step["CheckType"]
    return resolved


def approved_baselines(sagemaker, group: str | None, check_type: str) -> dict[str, str]:
    """{"Statistics": uri, "Constraints": uri} of the latest Approved package's DriftCheckBaselines ({} if none)."""
    if not group:
        return {}
    packages = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    if not packages:
        return {}
    package = sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    member = (package.get("DriftCheckBaselines") or {}).get(DRIFT_MEMBER[check_type], {})
    return {kind: member[kind]["S3Uri"] for kind in ("Statistics", "Constraints") if member.get(kind, {}).get("S3Uri")}


def drift_baseline(check: dict, sagemaker) -> tuple[dict[str, str], str]:
    """The baseline a check compares against, and where it came from (for the step's log)."""
    supplied = {kind: check.get(f"SuppliedBaseline{kind}") for kind in ("Statistics", "Constraints")}
    supplied = {kind: uri for kind, uri in supplied.items() if uri}
    if supplied:
        return supplied, "supplied"
    found = approved_baselines(sagemaker, check.get("ModelPackageGroupName"), check["CheckType"])
    return found, "the latest Approved package of " + str(check.get("ModelPackageGroupName"))


def with_baseline(arguments: dict, check: dict, sagemaker) -> tuple[dict, dict[str, str]]:
    """The job's request with the baseline inputs and variables SageMaker adds at run time."""
    if check["SkipCheck"]:
        return arguments, {}
    baseline, origin = drift_baseline(check, sagemaker)
    if "Constraints" not in baseline:  # every check compares against constraints; statistics add the drift check
        raise step_types.StepFailure(
            f"ClientError: {check['CheckType']} check has no baseline to check against: no Supplied baseline "
            f"and no Approved package with DriftCheckBaselines in {check.get('ModelPackageGroupName')}. "
            f"Run with SkipCheck true and RegisterNewBaseline true to create the first one"
        )
    inputs, environment = list(arguments.get("ProcessingInputs", [])), dict(arguments.get("Environment", {}))
    for kind, uri in sorted(baseline.items()):
        name = f"baseline_{kind.lower()}"
        folder = f"{BASELINE_ROOT}/{kind.lower()}"
        inputs.append(
            {
                "InputName": name,
                "S3Input": {"S3Uri": uri, "LocalPath": folder, "S3DataType": "S3Prefix", "S3InputMode": "File"},
            }
        )
        environment[name] = f"{folder}/{uri.rstrip('/').rsplit('/', 1)[1]}"
    environment.setdefault("local_stack_baseline_origin", origin)
    return {**arguments, "ProcessingInputs": inputs, "Environment": environment}, baseline


def run(arguments: dict, job: step_types.Job, check: dict, baseline: dict[str, str], extra=None) -> step_types.Outcome:
    """Run the check's processing job, then read its results as the step's properties."""
    outcome = step_types.run_processing(arguments, job, extra_environment=extra)
    output = arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    if check["CheckType"] == "MODEL_EXPLAINABILITY":
        calculated = {"Constraints": f"{output}/analysis.json"}
    else:
        calculated = {"Statistics": f"{output}/statistics.json", "Constraints": f"{output}/constraints.json"}
    used = calculated if check["RegisterNewBaseline"] else baseline
    properties = {**outcome.properties}
    for kind, uri in calculated.items():
        properties[f"CalculatedBaseline{kind}"] = uri
    for kind in calculated:
        if used.get(kind):
            properties[f"BaselineUsedForDriftCheck{kind}"] = used[kind]
    metadata = {
        "CheckType": check["CheckType"],
        "ModelPackageGroupName": check.get("ModelPackageGroupName"),
        "SkipCheck": check["SkipCheck"],
        "RegisterNewBaseline": check["RegisterNewBaseline"],
        "CheckJobArn": outcome.metadata["ProcessingJob"]["Arn"],
        **{f"CalculatedBaseline{k}": v for k, v in calculated.items()},
        **{f"BaselineUsedForDriftCheck{k}": used[k] for k in calculated if used.get(k)},
    }
    if not check["SkipCheck"]:
        report = f"{output}/constraint_violations.json"
        metadata["ViolationReport"] = report
        violations = json.loads(s3files.read(job.s3, report)).get("violations", [])
        if violations and check["FailOnViolation"]:
            found = "; ".join(
                f"{v.get('feature_name') or v.get('metric_name')}: {v['constraint_check_type']}" for v in violations
            )
            raise step_types.StepFailure(
                f"ClientError: {check['CheckType']} check found {len(violations)} violation(s) against the baseline "
                f"({found}); see {report}",
                {"QualityCheck" if check["CheckType"] != "MODEL_EXPLAINABILITY" else "ClarifyCheck": metadata},
            )
    kind = "ClarifyCheck" if check["CheckType"] == "MODEL_EXPLAINABILITY" else "QualityCheck"
    return step_types.Outcome(properties, {kind: metadata})


def shadow_endpoint_model(job: step_types.Job, model_name: str) -> dict[str, str]:
    """The model Clarify's shadow endpoint would serve, put in the job folder; the variable that names it.

    The Clarify image's environment has the xgboost of sagemaker-xgboost:1.7-1 (clarify-1.0.in): a model on
    another image would be served differently, so it is refused rather than explained with the wrong library.
    """
    model = job.sagemaker.describe_model(ModelName=model_name)
    container = model_steps.serving_container(job.sagemaker, model)  # a package's model serves the package's
    image = container.get("Image", "")
    if not image.rsplit("/", 1)[-1].startswith(SHADOW_ENDPOINT_IMAGE):
        raise step_types.StepFailure(
            f"ClientError: model {model_name} runs {image}; "
            f"the local Clarify serves {SHADOW_ENDPOINT_IMAGE} models only"
        )
    folder = job.host_path(MODEL_ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    bucket, key = s3files.split_uri(container["ModelDataUrl"])
    job.s3.download_file(bucket, key, str(folder / "model.tar.gz"))
    return {"LOCAL_AWS_MODEL_DIR": MODEL_ROOT}
