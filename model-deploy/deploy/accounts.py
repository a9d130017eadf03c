"""Which AWS account and region a stage lives in, and refusing to deploy it with another account's credentials.

A stage config may name its own account (`AccountId`) and region (`Region`). Empty or absent, the stage
lives where the project does (the tooling account, AWS_REGION): the single-account default, in which
nothing here calls AWS. With an account, the stage's own resources (execution role, data capture bucket,
key) come from its config, since the project's variables name the tooling account's, and every stack
change first checks that the credentials are that account's.
"""

from __future__ import annotations

import re

from deploy.errors import DeployError

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
# Template parameters a stage in its own account must set itself (prod-account.yml's outputs).
OWN_ACCOUNT_PARAMETERS = ("ModelExecutionRoleArn", "ArtifactBucket")


def of_stage(config: dict, stage: str) -> tuple[str, str]:
    """(account id, region) the stage config names; empty strings mean the project's own."""
    account_id = str(config.get("AccountId") or "").strip()
    region = str(config.get("Region") or "").strip()
    if account_id and not ACCOUNT_ID.match(account_id):
        raise DeployError(f"{stage}-config.json: AccountId must be 12 digits or empty, found {account_id!r}")
    if region and not account_id:
        raise DeployError(
            f"{stage}-config.json: Region {region!r} without AccountId; a stage in the project's account"
            " uses AWS_REGION"
        )
    if account_id:
        parameters = config.get("Parameters", {})
        missing = [name for name in OWN_ACCOUNT_PARAMETERS if not str(parameters.get(name) or "").strip()]
        if missing:
            raise DeployError(
                f"{stage}-config.json names account {account_id}, so its Parameters must name that account's "
                f"{', '.join(missing)} (the outputs of cloudformation/prod-account.yml there): the project's "
                "variables name the tooling account's"
            )
        role_account = arn_account(parameters["ModelExecutionRoleArn"])
        if role_account != account_id:
            raise DeployError(
                f"{stage}-config.json: ModelExecutionRoleArn is in account {role_account or '(none)'}, not in the "
                f"stage's account {account_id}"
            )
    return account_id, region


def arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else ""


def arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else ""


def require_package_region(stage: str, region: str, package_arn: str) -> None:
    """A model package serves only in its own region: a stage elsewhere cannot create a model from it."""
    if region and region != arn_region(package_arn):
        raise DeployError(
            f"{stage}-config.json puts {stage} in region {region}, but model package {package_arn} is in "
            f"{arn_region(package_arn)}: SageMaker creates a model from a package of its own region only. Leave "
            "Region empty or set it to the registry's region"
        )


def require_credentials_for(sts, stage: str, account_id: str) -> str:
    """Refuse credentials of any account other than the stage's; returns the caller's ARN."""
    identity = sts.get_caller_identity()
    if identity["Account"] != account_id:
        raise DeployError(
            f"refusing to deploy {stage}: {stage}-config.json puts it in account {account_id}, but the credentials "
            f"are for account {identity['Account']} ({identity['Arn']}). Nothing was changed. Run the job with "
            f"{stage}'s role (PROD_DEPLOY_ROLE_ARN: the role prod-account.yml made in {account_id})"
        )
    return identity["Arn"]


def group_reference(package_arn: str, group_name: str, stage_account: str) -> str:
    """The group to list versions of: its name in one account, its ARN from a stage in another account
    (a name would be looked up in the caller's own account)."""
    if not stage_account:
        return group_name
    prefix, _, _ = package_arn.partition(":model-package/")
    return f"{prefix}:model-package-group/{group_name}"
