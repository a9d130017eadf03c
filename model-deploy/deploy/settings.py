"""Every job's inputs: environment variables, the build step's dotenv, and the per-stage config files.

The project template's seed Lambda sets the variables as GitLab CI variables; on a laptop they are
plain environment variables. Later jobs also read `build/deploy.env` (the build step's dotenv
report): GitLab injects it as variables, and on a laptop it is read from disk. Real variables win.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import boto3

from deploy.errors import DeployError

REPO_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_DIR / "endpoint-config-template.yml"
DEFAULT_BUILD_DIR = REPO_DIR / "build"
DOTENV_NAME = "deploy.env"
STAGES = ("staging", "prod")

# Variable -> what it is, shown when it is missing.
VARIABLES = {
    "AWS_REGION": "the AWS region of the SageMaker project (AWS_DEFAULT_REGION also works)",
    "SAGEMAKER_PROJECT_NAME": "the SageMaker project name; endpoints are named <project>-<stage>",
    "SAGEMAKER_PROJECT_ID": "the SageMaker project id, tagged on every resource",
    "MODEL_PACKAGE_GROUP_NAME": "the model package group the approved versions come from",
    "ARTIFACT_BUCKET": "the project's S3 artifact bucket, which receives the endpoints' data capture",
    "MODEL_EXECUTION_ROLE_ARN": "the IAM role SageMaker assumes to serve the model",
    "KMS_KEY_ARN": "optional KMS key for data capture and endpoint volumes",
    "CLOUDFORMATION_ROLE_ARN": "optional role CloudFormation assumes to create the resources (least privilege for CI)",
    "MODEL_PACKAGE_ARN": "from the approval trigger: the exact version to deploy (empty: latest Approved)",
    "MODEL_APPROVAL_STATUS": "from the approval trigger: Approved or Rejected",
}
# What the build step (and a rollback, which redoes it for one stage) needs.
BUILD_VARIABLES = (
    "AWS_REGION",
    "SAGEMAKER_PROJECT_NAME",
    "SAGEMAKER_PROJECT_ID",
    "MODEL_PACKAGE_GROUP_NAME",
    "ARTIFACT_BUCKET",
    "MODEL_EXECUTION_ROLE_ARN",
)
DEPLOY_VARIABLES = ("AWS_REGION", "SAGEMAKER_PROJECT_NAME")


@dataclass(frozen=True)
class Settings:
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
    build_dir: Path = DEFAULT_BUILD_DIR
    dotenv: dict | None = None  # the build step's report, when present

    def stack_name(self, stage: str) -> str:
        return stack_name(self.project_name, stage)

    def endpoint_name(self, stage: str) -> str:
        return endpoint_name(self.project_name, stage)

    def client(self, service: str):
        # No endpoint_url: botocore reads AWS_ENDPOINT_URL(_<SERVICE>) itself, so the same code
        # talks to AWS or to the local stack; credentials come from the default chain (OIDC in CI).
        return boto3.client(service, region_name=self.region)


def stack_name(project_name: str, stage: str) -> str:
    # The sagemaker- prefix is what SageMaker project roles are allowed to manage.
    return f"sagemaker-{project_name}-deploy-{stage}"


def endpoint_name(project_name: str, stage: str) -> str:
    return f"{project_name}-{stage}"


def load(required: Iterable[str], build_dir: Path | str | None = None) -> Settings:
    """Read the settings; raise DeployError naming every missing required variable."""
    build_dir = Path(build_dir) if build_dir else DEFAULT_BUILD_DIR
    dotenv = read_dotenv(build_dir / DOTENV_NAME)

    def get(name: str) -> str:
        value = os.environ.get(name, "").strip()
        if not value and name == "AWS_REGION":
            value = os.environ.get("AWS_DEFAULT_REGION", "").strip()
        return value

    missing = [name for name in required if not get(name)]
    if missing:
        lines = "\n".join(f"  {name}: {VARIABLES[name]}" for name in missing)
        raise DeployError(
            f"missing environment variable(s):\n{lines}\n"
            "Set them as GitLab CI/CD variables (the project template does this), or export them on a laptop."
        )
    return Settings(
        region=get("AWS_REGION"),
        project_name=get("SAGEMAKER_PROJECT_NAME"),
        project_id=get("SAGEMAKER_PROJECT_ID"),
        model_package_group=get("MODEL_PACKAGE_GROUP_NAME"),
        artifact_bucket=get("ARTIFACT_BUCKET"),
        execution_role_arn=get("MODEL_EXECUTION_ROLE_ARN"),
        kms_key_arn=get("KMS_KEY_ARN"),
        cloudformation_role_arn=get("CLOUDFORMATION_ROLE_ARN"),
        model_package_arn=get("MODEL_PACKAGE_ARN"),
        approval_status=get("MODEL_APPROVAL_STATUS"),
        build_dir=build_dir,
        dotenv=dotenv,
    )


def build_value(settings: Settings, name: str) -> str:
    """A value from the build step: the environment (GitLab's dotenv injection) first, then the file."""
    value = os.environ.get(name, "").strip() or (settings.dotenv or {}).get(name, "")
    if not value:
        raise DeployError(
            f"{name} is not set and {settings.build_dir / DOTENV_NAME} does not provide it: "
            "run `python -m deploy build` first"
        )
    return value


def read_dotenv(path: Path) -> dict:
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def write_dotenv(path: Path, values: dict) -> None:
    for key, value in values.items():
        # GitLab's dotenv reports take one line per variable, no quotes, no newlines.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or "\n" in str(value):
            raise ValueError(f"cannot write {key}={value!r} to a dotenv report")
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def load_stage_config(stage: str, repo_dir: Path = REPO_DIR) -> dict:
    """`<stage>-config.json`: CloudFormation Parameters and Tags for the stage (and staging test budgets)."""
    if stage not in STAGES:
        raise DeployError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    path = repo_dir / f"{stage}-config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"{path} is missing: every stage needs its config file") from None
    except json.JSONDecodeError as error:
        raise DeployError(f"{path} is not valid JSON: {error}") from None
    parameters = config.get("Parameters")
    if not isinstance(parameters, dict):
        raise DeployError(f'{path}: expected an object "Parameters" with the template parameters of the stage')
    if parameters.get("StageName") != stage:
        raise DeployError(f'{path}: Parameters.StageName must be "{stage}", found {parameters.get("StageName")!r}')
    for section in ("Parameters", "Tags"):
        for key, value in config.get(section, {}).items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise DeployError(f"{path}: {section}.{key} must be a string or a number, found {value!r}")
    return config
