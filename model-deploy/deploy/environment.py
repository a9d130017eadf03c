"""The environment contract: the variables the jobs read, and which ones each command needs.

The project template's seed Lambda sets them as GitLab CI/CD variables; on a laptop they are plain
environment variables. A missing required one stops the command with an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from deploy.errors import DeployError

# Variable -> what it is, shown when it is missing.
VARIABLES = {
    "AWS_REGION": "the AWS region of the SageMaker project (AWS_DEFAULT_REGION also works)",
    "SAGEMAKER_PROJECT_NAME": "the SageMaker project name; endpoints are named <project>-<stage>",
    "SAGEMAKER_PROJECT_ID": "the SageMaker project id, tagged on every resource",
    "MODEL_PACKAGE_GROUP_NAME": "the model package group the approved versions come from",
    "ARTIFACT_BUCKET": "the project's S3 artifact bucket (data capture, staging test results)",
    "MODEL_EXECUTION_ROLE_ARN": "the IAM role SageMaker assumes to serve the model",
    "KMS_KEY_ARN": "optional KMS key for data capture, endpoint volumes and staging test results",
    "CLOUDFORMATION_ROLE_ARN": "optional role CloudFormation assumes to create the resources (least privilege for CI)",
    "MODEL_PACKAGE_ARN": "from the approval trigger: the exact version to deploy (empty: latest Approved)",
    "MODEL_APPROVAL_STATUS": "from the approval trigger: Approved or Rejected",
    "EVENTBRIDGE_EVENT_ID": "from the approval trigger: the event's id; build deploys each event once",
    "ALERT_TOPIC_ARN": "optional: the project's alert topic; the endpoint alarms (5xx, latency, drift) notify it",
}
# What build needs, and rollback, which builds one stage's inputs again.
BUILD_VARIABLES = (
    "AWS_REGION",
    "SAGEMAKER_PROJECT_NAME",
    "SAGEMAKER_PROJECT_ID",
    "MODEL_PACKAGE_GROUP_NAME",
    "ARTIFACT_BUCKET",
    "MODEL_EXECUTION_ROLE_ARN",
)
DEPLOY_VARIABLES = ("AWS_REGION", "SAGEMAKER_PROJECT_NAME")
# staging-test and summary also write and read the staging results in the artifact bucket.
RESULTS_VARIABLES = (*DEPLOY_VARIABLES, "ARTIFACT_BUCKET")


@dataclass(frozen=True)
class Environment:
    region: str
    project_name: str
    project_id: str = ""
    model_package_group: str = ""
    artifact_bucket: str = ""
    execution_role_arn: str = ""
    kms_key_arn: str = ""
    cloudformation_role_arn: str = ""  # empty: CloudFormation acts with the caller's credentials
    model_package_arn: str = ""  # set by the approval trigger, empty on a web run
    approval_status: str = ""
    event_id: str = ""  # set by the approval trigger, empty on a web run
    alert_topic_arn: str = ""  # empty: the endpoint alarms notify no one


def variable(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value and name == "AWS_REGION":
        value = os.environ.get("AWS_DEFAULT_REGION", "").strip()
    return value


def load(required: Iterable[str]) -> Environment:
    """Read the variables; raise DeployError naming every missing required one."""
    missing = [name for name in required if not variable(name)]
    if missing:
        lines = "\n".join(f"  {name}: {VARIABLES[name]}" for name in missing)
        raise DeployError(
            f"missing environment variable(s):\n{lines}\n"
            "Set them as GitLab CI/CD variables (the project template does this), or export them on a laptop."
        )
    return Environment(
        region=variable("AWS_REGION"),
        project_name=variable("SAGEMAKER_PROJECT_NAME"),
        project_id=variable("SAGEMAKER_PROJECT_ID"),
        model_package_group=variable("MODEL_PACKAGE_GROUP_NAME"),
        artifact_bucket=variable("ARTIFACT_BUCKET"),
        execution_role_arn=variable("MODEL_EXECUTION_ROLE_ARN"),
        kms_key_arn=variable("KMS_KEY_ARN"),
        cloudformation_role_arn=variable("CLOUDFORMATION_ROLE_ARN"),
        model_package_arn=variable("MODEL_PACKAGE_ARN"),
        approval_status=variable("MODEL_APPROVAL_STATUS"),
        event_id=variable("EVENTBRIDGE_EVENT_ID"),
        alert_topic_arn=variable("ALERT_TOPIC_ARN"),
    )
