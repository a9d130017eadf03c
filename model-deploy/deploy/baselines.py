"""The deployed package's data-quality baselines, for the endpoint's Model Monitor (DriftCheckBaselines).

build resolves the package's `DriftCheckBaselines.ModelDataQuality` statistics and constraints and passes them
to the template with `MonitoringBaselineId`, the first 16 hex digits of the SHA-256 of both files: the baselines
are pinned as the artifacts are (`artifacts.py`), and before every stack change `require_unchanged` recomputes
the id and refuses a baseline replaced since build. A package without baselines is deployed without a monitor,
with a warning. The drift alarm watches the features the constraints list (at most `MAX_ALARM_FEATURES`).
"""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

from deploy.artifacts import sha256_of
from deploy.errors import DeployError
from deploy.registry import ModelPackage, split_s3_uri

MAX_ALARM_FEATURES = 10  # the template's alarm slots
PARAMETERS = ("DataQualityBaselineStatistics", "DataQualityBaselineConstraints", "MonitoringBaselineId")


def data_quality(package: ModelPackage) -> dict[str, str]:
    """{"Statistics": uri, "Constraints": uri} of the package's data-quality baselines ({} when it has none)."""
    member = package.drift_check_baselines.get("ModelDataQuality") or {}
    return {
        kind: member[kind]["S3Uri"] for kind in ("Statistics", "Constraints") if (member.get(kind) or {}).get("S3Uri")
    }


def baseline_id(s3, statistics_uri: str, constraints_uri: str) -> str:
    digest = hashlib.sha256(f"{sha256_of(s3, statistics_uri)}:{sha256_of(s3, constraints_uri)}".encode())
    return digest.hexdigest()[:16]


def monitoring_parameters(s3, package: ModelPackage) -> tuple[dict[str, str], list[str]]:
    """The template parameters of the endpoint's monitor, and warnings to print."""
    found = data_quality(package)
    if set(found) != {"Statistics", "Constraints"}:
        return {}, [
            f"warning: model package {package.label} has no DriftCheckBaselines.ModelDataQuality statistics and "
            "constraints: its endpoints are deployed without a data-quality monitor (register the pipeline's "
            "DataQualityCheck baseline with the package to get one)"
        ]
    bucket, key = split_s3_uri(found["Constraints"])
    try:
        constraints = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError) as error:
        raise DeployError(
            f"cannot read the package's data-quality constraints {found['Constraints']}: {error}"
        ) from None
    features = [feature["name"] for feature in constraints.get("features", [])]
    warnings = []
    if len(features) > MAX_ALARM_FEATURES:
        warnings.append(
            f"warning: the drift alarm watches the first {MAX_ALARM_FEATURES} of {len(features)} features "
            f"({', '.join(features[MAX_ALARM_FEATURES:])} are monitored, but not alarmed)"
        )
    parameters = {
        "DataQualityBaselineStatistics": found["Statistics"],
        "DataQualityBaselineConstraints": found["Constraints"],
        "MonitoringBaselineId": baseline_id(s3, found["Statistics"], found["Constraints"]),
        "DriftAlarmFeatures": ",".join(features[:MAX_ALARM_FEATURES]),
    }
    return parameters, warnings


def require_unchanged(s3, parameters: dict[str, str]) -> None:
    """Refuse baselines whose files changed since build pinned them."""
    if not parameters.get("MonitoringBaselineId"):
        return
    actual = baseline_id(s3, parameters["DataQualityBaselineStatistics"], parameters["DataQualityBaselineConstraints"])
    if actual != parameters["MonitoringBaselineId"]:
        raise DeployError(
            f"refusing to deploy: the data-quality baselines {parameters['DataQualityBaselineConstraints']} (and "
            f"statistics) changed since build pinned them (id {actual}, pinned {parameters['MonitoringBaselineId']}). "
            "Nothing was changed. Restore the registered S3 object versions, or run build again to accept them."
        )
