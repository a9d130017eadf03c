"""Production in its own account: what its roles may do, in that account and in the tooling account.

Two templates are rendered: the tooling account's project.yml with ProdAccountId set, and the production
account's prod-account.yml. A request of a production role on a tooling resource is decided across
accounts (its identity policy AND the bucket, key or model package group policy must allow it); on a
production resource by the identity policy (and the capture bucket's policy). moto evaluates neither
bucket nor key policies and has no model package group policies, so this matrix is the proof, not a
local run. The single-account rendering is checked to be what it was.
"""

from __future__ import annotations

import json
import re

import pytest
from cfnlint.decode import cfn_yaml

from .policy_evaluator import ALLOW, EXPLICIT_DENY, Request, decide, decide_across_accounts
from .rendered_template import ACCOUNT, BUCKET, HOST, PSEUDO, REGION, Rendered
from .test_access_matrix import TOKENS

PROD = "210987654321"
OTHER = "999988887777"  # an account neither template knows
PROD_TEMPLATE = Rendered().template_path.parent / "prod-account.yml"
PROD_BUCKET = "abalone-prod-capture"
TOOLING_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/ProjectKey"
PROD_PARAMETERS = {
    "SageMakerProjectName": "abalone",
    "ToolingAccountId": ACCOUNT,
    "ArtifactBucketName": BUCKET,
    "ToolingKmsKeyArn": TOOLING_KEY,
    "GitLabServerUrl": f"https://{HOST}",
    "GitLabNamespacePath": "ml-team/abalone",
}
DEPLOY_ROLE = f"arn:aws:iam::{PROD}:role/abalone-prod-deploy"
EXECUTION_ROLE = f"arn:aws:iam::{PROD}:role/abalone-prod-model-execution"


class RenderedProdAccount(Rendered):
    """prod-account.yml rendered in account PROD (same region); named roles get their real ARNs."""

    def __init__(self):
        self.template_path = PROD_TEMPLATE
        self.template = cfn_yaml.load(str(PROD_TEMPLATE))
        defaults = {name: p["Default"] for name, p in self.template["Parameters"].items() if "Default" in p}
        self.parameters = {**defaults, **PROD_PARAMETERS}
        self.conditions = {name: self.resolve(c) for name, c in self.template["Conditions"].items()}

    def arn(self, logical_id: str) -> str:
        resource = self.template["Resources"][logical_id]
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{PROD}:role/{self.resolve(resource['Properties']['RoleName'])}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{PROD_BUCKET}"
        if kind == "AWS::IAM::ManagedPolicy" and "ManagedPolicyName" in resource["Properties"]:
            return f"arn:aws:iam::{PROD}:policy/{self.resolve(resource['Properties']['ManagedPolicyName'])}"
        if kind == "AWS::IAM::OIDCProvider":
            return f"arn:aws:iam::{PROD}:oidc-provider/{HOST}"
        return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{PROD}:{logical_id}"

    def ref(self, name: str) -> str:
        if name == "AWS::AccountId":
            return PROD
        if name in self.template["Resources"] and self.template["Resources"][name]["Type"] == "AWS::S3::Bucket":
            return PROD_BUCKET
        return super().ref(name)


@pytest.fixture(scope="module")
def tooling() -> Rendered:
    return Rendered({"ProdAccountId": PROD})


@pytest.fixture(scope="module")
def prod() -> RenderedProdAccount:
    return RenderedProdAccount()


def resource_policy(tooling: Rendered, logical_id: str, prop: str) -> dict:
    return tooling.resolve(tooling.template["Resources"][logical_id]["Properties"][prop])


def account_of(resource: str) -> str:
    if resource == "*":  # actions without resources (PutMetricData): decided where the caller is
        return PROD
    if resource.startswith("arn:aws:s3:::"):
        return {BUCKET: ACCOUNT, PROD_BUCKET: PROD}[resource.split(":::")[1].split("/")[0]]
    return resource.split(":")[4]


def decision(tooling, prod, principal: str, identity: list[dict], action: str, resource: str, context=None) -> str:
    context = {"aws:PrincipalArn": principal, "aws:SecureTransport": "true", "s3:TlsVersion": "1.3", **(context or {})}
    request = Request(action, resource, context, principal={"AWS": principal})
    if account_of(resource) == PROD:
        pooled = list(identity)
        if resource.startswith(f"arn:aws:s3:::{PROD_BUCKET}"):
            pooled.append(
                prod.resolve(prod.template["Resources"]["DataCaptureBucketPolicy"]["Properties"]["PolicyDocument"])
            )
        return decide(request, pooled)
    resource_policies = []
    if resource.startswith(f"arn:aws:s3:::{BUCKET}"):
        resource_policies.append(tooling.bucket_policy())
    elif resource == TOOLING_KEY:
        resource_policies.append(resource_policy(tooling, "ProjectKey", "KeyPolicy"))
    elif resource.startswith(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package"):
        resource_policies.append(resource_policy(tooling, "ModelPackageGroup", "ModelPackageGroupPolicy"))
    return decide_across_accounts(request, identity, resource_policies)


def reads_object(tooling, prod, principal: str, identity: list[dict], key: str) -> bool:
    """GetObject of a tooling artifact (SSE-KMS): S3 must allow it, and KMS the decrypt S3 asks for."""
    s3 = decision(tooling, prod, principal, identity, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/{key}")
    kms = decision(
        tooling, prod, principal, identity, "kms:Decrypt", TOOLING_KEY, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    )
    return s3 == kms == ALLOW


def sm(account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{account}:{kind}/{name}"


def stack(account: str, stage: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{account}:stack/sagemaker-abalone-deploy-{stage}/1a2b"


PROD_TAGS = {"aws:RequestTag/sagemaker:project-name": "abalone", "aws:RequestTag/stage": "prod"}
MODEL = "abalone-build/models/pipelines-x1-Train/output/model.tar.gz"
EVALUATION = "abalone-build/exec-1/Evaluate/evaluation/evaluation.json"

# What production deploy needs: (action, resource, context).
DEPLOY_NEEDS = {
    "is the version still Approved (tooling registry)": (
        "sagemaker:DescribeModelPackage",
        sm(ACCOUNT, "model-package", "abalone/3"),
        {},
    ),
    "rollback lists the versions (tooling registry)": (
        "sagemaker:ListModelPackages",
        sm(ACCOUNT, "model-package-group", "abalone"),
        {},
    ),
    "describe the group (tooling registry)": (
        "sagemaker:DescribeModelPackageGroup",
        sm(ACCOUNT, "model-package-group", "abalone"),
        {},
    ),
    "update the prod stack": ("cloudformation:UpdateStack", stack(PROD, "prod"), {}),
    "update the prod endpoint": ("sagemaker:UpdateEndpoint", sm(PROD, "endpoint", "abalone-prod"), {}),
    "create a prod model": ("sagemaker:CreateModel", sm(PROD, "model", "Model-x"), PROD_TAGS),
    "pass the model execution role": (
        "iam:PassRole",
        EXECUTION_ROLE,
        {"iam:PassedToService": "sagemaker.amazonaws.com"},
    ),
    "set the rollback alarms": (
        "cloudwatch:PutMetricAlarm",
        f"arn:aws:cloudwatch:{REGION}:{PROD}:alarm:abalone-prod-5xx",
        {},
    ),
}
# What it must never do: writes in the tooling account, anything outside prod's own resources.
DEPLOY_NEVER = {
    "approve a version (tooling registry)": (
        "sagemaker:UpdateModelPackage",
        sm(ACCOUNT, "model-package", "abalone/3"),
        {},
    ),
    "register a version (tooling registry)": (
        "sagemaker:CreateModelPackage",
        sm(ACCOUNT, "model-package", "abalone/4"),
        {},
    ),
    "another group of the tooling account": (
        "sagemaker:DescribeModelPackage",
        sm(ACCOUNT, "model-package", "other/1"),
        {},
    ),
    "overwrite a registered model": ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/{MODEL}", {}),
    "read the training data": ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/data/abalone.csv", {}),
    "read the test split": ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/abalone-build/exec-1/Split/test/test.csv", {}),
    "read staging's results": (
        "s3:GetObject",
        f"arn:aws:s3:::{BUCKET}/staging-tests/abalone/3/staging-test-results.json",
        {},
    ),
    "decrypt with the tooling key outside S3": ("kms:Decrypt", TOOLING_KEY, {}),
    "a prod stack in the tooling account": ("cloudformation:UpdateStack", stack(ACCOUNT, "prod"), {}),
    "the staging stack in the tooling account": ("cloudformation:UpdateStack", stack(ACCOUNT, "staging"), {}),
    "the tooling account's endpoints": ("sagemaker:UpdateEndpoint", sm(ACCOUNT, "endpoint", "abalone-staging"), {}),
    "a staging stack in the prod account": ("cloudformation:UpdateStack", stack(PROD, "staging"), {}),
    "a model tagged staging": (
        "sagemaker:CreateModel",
        sm(PROD, "model", "Model-y"),
        {**PROD_TAGS, "aws:RequestTag/stage": "staging"},
    ),
    "a third account's registry": ("sagemaker:DescribeModelPackage", sm(OTHER, "model-package", "abalone/3"), {}),
    "a third account's endpoint": ("sagemaker:UpdateEndpoint", sm(OTHER, "endpoint", "abalone-prod"), {}),
}


@pytest.mark.parametrize(("action", "resource", "context"), DEPLOY_NEEDS.values(), ids=DEPLOY_NEEDS.keys())
def test_the_prod_deploy_role_can_do_what_production_needs(tooling, prod, action, resource, context):
    identity = prod.identity_policies("GitLabDeployProdRole")
    assert decision(tooling, prod, DEPLOY_ROLE, identity, action, resource, context) == ALLOW


@pytest.mark.parametrize(("action", "resource", "context"), DEPLOY_NEVER.values(), ids=DEPLOY_NEVER.keys())
def test_the_prod_deploy_role_can_do_nothing_else(tooling, prod, action, resource, context):
    identity = prod.identity_policies("GitLabDeployProdRole")
    assert decision(tooling, prod, DEPLOY_ROLE, identity, action, resource, context) != ALLOW


def test_the_prod_deploy_role_reads_the_pinned_artifacts_for_the_digest_check(tooling, prod):
    identity = prod.identity_policies("GitLabDeployProdRole")
    assert reads_object(tooling, prod, DEPLOY_ROLE, identity, MODEL)
    assert reads_object(tooling, prod, DEPLOY_ROLE, identity, EVALUATION)


def test_the_model_execution_role_reads_the_model_and_writes_capture_in_prod_only(tooling, prod):
    identity = prod.identity_policies("ModelExecutionRole")
    assert reads_object(tooling, prod, EXECUTION_ROLE, identity, MODEL)
    for key in ("data/abalone.csv", "abalone-build/exec-1/Split/test/test.csv", EVALUATION):
        assert not reads_object(tooling, prod, EXECUTION_ROLE, identity, key), key
    capture = f"arn:aws:s3:::{PROD_BUCKET}/datacapture/abalone-prod/AllTraffic/x.jsonl"
    assert decision(tooling, prod, EXECUTION_ROLE, identity, "s3:PutObject", capture) == ALLOW
    tooling_capture = f"arn:aws:s3:::{BUCKET}/datacapture/abalone-prod/AllTraffic/x.jsonl"
    assert decision(tooling, prod, EXECUTION_ROLE, identity, "s3:PutObject", tooling_capture) != ALLOW


def test_no_other_principal_of_the_prod_account_gets_in_even_with_full_identity_rights(tooling, prod):
    # The tooling policies name the prod account, narrowed by ArnEquals to the two roles: an administrator
    # (or any other role) of the prod account is refused by the resource policies themselves.
    admin = f"arn:aws:iam::{PROD}:role/Admin"
    everything = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    assert not reads_object(tooling, prod, admin, everything, MODEL)
    describe = ("sagemaker:DescribeModelPackage", sm(ACCOUNT, "model-package", "abalone/3"))
    assert decision(tooling, prod, admin, everything, *describe) != ALLOW
    # and the model execution role cannot read the registry (only the deploy role is named there)
    assert decision(tooling, prod, EXECUTION_ROLE, everything, *describe) != ALLOW


def test_the_tls_denies_hold_for_the_prod_account(tooling, prod):
    identity = prod.identity_policies("GitLabDeployProdRole")
    model = f"arn:aws:s3:::{BUCKET}/{MODEL}"
    plain = {"aws:SecureTransport": "false"}
    assert decision(tooling, prod, DEPLOY_ROLE, identity, "s3:GetObject", model, plain) == EXPLICIT_DENY


# -- the prod account's trust: exactly as strong as the single-account production role --------------
def assumes_prod_role(prod: RenderedProdAccount, token: dict) -> bool:
    request = Request(
        "sts:AssumeRoleWithWebIdentity",
        context={f"{HOST}:{claim}": value for claim, value in token.items()},
        principal={"Federated": prod.arn("GitLabOidcProvider")},
    )
    return decide(request, [prod.trust_policy("GitLabDeployProdRole")]) == ALLOW


@pytest.mark.parametrize(("token", "expected"), TOKENS.values(), ids=TOKENS.keys())
def test_only_the_production_jobs_assume_the_prod_accounts_role(prod, token, expected):
    assert assumes_prod_role(prod, token) == ("GitLabDeployProdRole" in expected)


def test_the_trust_is_the_single_account_roles_claim_for_claim(prod):
    single = Rendered().trust_policy("GitLabDeployProdRole")["Statement"][0]["Condition"]
    assert prod.trust_policy("GitLabDeployProdRole")["Statement"][0]["Condition"] == single


def test_the_prod_accounts_provider_accepts_only_the_production_audience(prod):
    provider = prod.resolve(prod.template["Resources"]["GitLabOidcProvider"]["Properties"])
    assert provider["ClientIdList"] == ["sts.amazonaws.com/production"]


# -- the two templates name the same roles --------------------------------------------------------
def test_the_tooling_stack_seeds_the_prod_accounts_role(tooling, prod):
    assert not tooling.conditions["SingleAccount"]  # no production role in the tooling account
    seed = tooling.resolve(tooling.template["Resources"]["SeedRepositoriesResource"]["Properties"])
    assert seed["DeployProdRoleArn"] == prod.arn("GitLabDeployProdRole") == DEPLOY_ROLE
    assert prod.arn("ModelExecutionRole") == EXECUTION_ROLE
    output = tooling.resolve(tooling.template["Outputs"]["GitLabDeployProdRoleArn"]["Value"])
    assert output == DEPLOY_ROLE


def test_prod_alerts_go_to_an_encrypted_topic_of_the_prod_account(prod):
    topic = prod.resolve(prod.template["Resources"]["AlertTopic"]["Properties"])
    assert topic["KmsMasterKeyId"] == prod.arn("ProdKey")
    policy = prod.resolve(prod.template["Resources"]["AlertTopicPolicy"]["Properties"]["PolicyDocument"])
    publish = Request(
        "sns:Publish",
        prod.arn("AlertTopic"),
        {"aws:SourceAccount": PROD, "aws:SecureTransport": "true"},
        principal={"Service": "cloudwatch.amazonaws.com"},
    )
    assert decide(publish, [policy]) == ALLOW
    assert (
        decide(
            Request(
                publish.action, publish.resource, {**publish.context, "aws:SourceAccount": OTHER}, publish.principal
            ),
            [policy],
        )
        != ALLOW
    )


# -- one account: nothing changes -----------------------------------------------------------------
def test_the_single_account_rendering_grants_no_other_account():
    single = Rendered()
    assert single.conditions["SingleAccount"] and not single.conditions["SeparateProdAccount"]
    group = single.resolve(single.template["Resources"]["ModelPackageGroup"]["Properties"])
    assert "ModelPackageGroupPolicy" not in group
    assert [s["Sid"] for s in single.bucket_policy()["Statement"]] == [
        "DenyWithoutTls",
        "DenyOldTls",
        "BuildRoleWritesOnlyCodeAndData",
        "BuildRoleNeverDeletesData",
        "StagingRoleWritesOnlyStagingTests",
    ]
    key = single.resolve(single.template["Resources"]["ProjectKey"]["Properties"]["KeyPolicy"])
    assert [s["Sid"] for s in key["Statement"]] == [
        "AccountAdministersTheKeyThroughIam",
        "CloudWatchLogsEncryptsThisProjectsLogGroups",
        "EventBridgeWritesToTheDeadLetterQueue",
    ]
    seed = single.resolve(single.template["Resources"]["SeedRepositoriesResource"]["Properties"])
    assert seed["DeployProdRoleArn"] == single.arn("GitLabDeployProdRole")
    # No account id but this one appears anywhere in what the stack would create.
    rendered = json.dumps({name: single.resolve(r) for name, r in single.template["Resources"].items()})
    assert set(re.findall(r"(?<![0-9])[0-9]{12}(?![0-9])", rendered)) == {PSEUDO["AWS::AccountId"]}


def test_the_cross_account_statements_exist_only_with_a_prod_account(tooling):
    sids = [s["Sid"] for s in tooling.bucket_policy()["Statement"]]
    assert sids[-1] == "ProductionAccountReadsPinnedArtifacts"
    key = resource_policy(tooling, "ProjectKey", "KeyPolicy")
    assert key["Statement"][-1]["Sid"] == "ProductionAccountReadsArtifactsThroughS3"
    rendered = json.dumps({name: tooling.resolve(r) for name, r in tooling.template["Resources"].items()})
    assert set(re.findall(r"(?<![0-9])[0-9]{12}(?![0-9])", rendered)) == {ACCOUNT, PROD}


# -- prod's monitor and batch inference in its own account ----------------------------------------------------------
BASELINES = (
    "abalone-build/exec-1/DataQualityCheck/constraints.json",
    "abalone-build/exec-1/ModelQualityCheck/constraints.json",
    "abalone-build/exec-1/ModelExplainabilityCheck/analysis.json",
)
FEATURE_CODE = "abalone-build/code/0123456789abcdef/preprocess.py"
CHECK_CONFIG = "abalone-build/check-config/shap/0123/analysis_config.json"
BATCH_STACK = "sagemaker-abalone-batch-prod"
TRIGGER_ROLE = f"arn:aws:iam::{PROD}:role/{BATCH_STACK}/{BATCH_STACK}-SchedulerRole-1A2B3C4D"
BOUNDARY = f"arn:aws:iam::{PROD}:policy/abalone-batch-prod-boundary"
PROD_BATCH = f"arn:aws:s3:::{PROD_BUCKET}/batch-inference/abalone/prod"

BATCH_DEPLOY_NEEDS = {
    "create prod's batch pipeline": (
        "sagemaker:CreatePipeline",
        sm(PROD, "pipeline", "abalone-batch-inference-prod"),
        {},
    ),
    "update prod's model-quality pipeline": (
        "sagemaker:UpdatePipeline",
        sm(PROD, "pipeline", "abalone-model-quality-prod"),
        {},
    ),
    "create the batch model": ("sagemaker:CreateModel", sm(PROD, "model", "abalone-batch-prod-v3"), PROD_TAGS),
    "upload the batch code to prod's bucket": (
        "s3:PutObject",
        f"{PROD_BATCH}/code/0123456789abcdef/postprocess.py",
        {},
    ),
    "create the triggers stack": (
        "cloudformation:CreateStack",
        f"arn:aws:cloudformation:{REGION}:{PROD}:stack/{BATCH_STACK}/1a2b",
        {},
    ),
    "create a trigger role under the boundary": ("iam:CreateRole", TRIGGER_ROLE, {"iam:PermissionsBoundary": BOUNDARY}),
    "pass it to the scheduler": ("iam:PassRole", TRIGGER_ROLE, {"iam:PassedToService": "scheduler.amazonaws.com"}),
    "create the schedule": (
        "scheduler:CreateSchedule",
        f"arn:aws:scheduler:{REGION}:{PROD}:schedule/default/{BATCH_STACK}-Schedule-1A2B",
        {},
    ),
    "create the input rule": (
        "events:PutRule",
        f"arn:aws:events:{REGION}:{PROD}:rule/{BATCH_STACK}-InputRule-1A2B",
        {},
    ),
    "create the endpoint's monitor": (
        "sagemaker:CreateMonitoringSchedule",
        sm(PROD, "monitoring-schedule", "abalone-prod-data-quality"),
        {},
    ),
    "create its job definition": (
        "sagemaker:CreateDataQualityJobDefinition",
        sm(PROD, "data-quality-job-definition", "abalone-prod-dq-0a1b2c3d"),
        {},
    ),
}
BATCH_DEPLOY_NEVER = {
    "a batch pipeline in the tooling account": (
        "sagemaker:CreatePipeline",
        sm(ACCOUNT, "pipeline", "abalone-batch-inference-prod"),
        {},
    ),
    "staging's batch pipeline": (
        "sagemaker:UpdatePipeline",
        sm(PROD, "pipeline", "abalone-batch-inference-staging"),
        {},
    ),
    "run a batch pipeline": (
        "sagemaker:StartPipelineExecution",
        sm(PROD, "pipeline", "abalone-batch-inference-prod"),
        {},
    ),
    "a trigger role without the boundary": ("iam:CreateRole", TRIGGER_ROLE, {}),
    "a role outside the stack's path": (
        "iam:CreateRole",
        f"arn:aws:iam::{PROD}:role/{BATCH_STACK}-Admin",
        {"iam:PermissionsBoundary": BOUNDARY},
    ),
    "lift a trigger role's boundary": ("iam:DeleteRolePermissionsBoundary", TRIGGER_ROLE, {}),
    "widen the boundary": ("iam:CreatePolicyVersion", BOUNDARY, {}),
    "pass a trigger role to Lambda": ("iam:PassRole", TRIGGER_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}),
    "write batch code into the tooling bucket": (
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/batch-inference/abalone/prod/code/x/postprocess.py",
        {},
    ),
    "overwrite the feature code": ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/{FEATURE_CODE}", {}),
    "a staging monitor": (
        "sagemaker:CreateMonitoringSchedule",
        sm(PROD, "monitoring-schedule", "abalone-staging-x"),
        {},
    ),
}


@pytest.mark.parametrize(("action", "resource", "context"), BATCH_DEPLOY_NEEDS.values(), ids=BATCH_DEPLOY_NEEDS.keys())
def test_the_prod_deploy_role_deploys_prods_monitor_and_batch_inference_in_its_account(
    tooling, prod, action, resource, context
):
    identity = prod.identity_policies("GitLabDeployProdRole")
    assert decision(tooling, prod, DEPLOY_ROLE, identity, action, resource, context) == ALLOW


@pytest.mark.parametrize(("action", "resource", "context"), BATCH_DEPLOY_NEVER.values(), ids=BATCH_DEPLOY_NEVER.keys())
def test_the_prod_deploy_role_batch_grants_go_no_further(tooling, prod, action, resource, context):
    identity = prod.identity_policies("GitLabDeployProdRole")
    assert decision(tooling, prod, DEPLOY_ROLE, identity, action, resource, context) != ALLOW


def test_batch_upsert_in_prod_reads_the_feature_code_and_check_config_from_the_tooling_account(tooling, prod):
    identity = prod.identity_policies("GitLabDeployProdRole")
    assert reads_object(tooling, prod, DEPLOY_ROLE, identity, FEATURE_CODE)
    assert reads_object(tooling, prod, DEPLOY_ROLE, identity, CHECK_CONFIG)
    assert not reads_object(tooling, prod, DEPLOY_ROLE, identity, BASELINES[0])  # the jobs read those, not deploy


MODEL_ROLE_NEEDS = {
    "list the captured hour": (
        "s3:ListBucket",
        f"arn:aws:s3:::{PROD_BUCKET}",
        {"s3:prefix": "datacapture/abalone-prod/abalone-prod/AllTraffic/2026/12/01/10/"},
    ),
    "read a captured file": (
        "s3:GetObject",
        f"arn:aws:s3:::{PROD_BUCKET}/datacapture/abalone-prod/AllTraffic/x.jsonl",
        {},
    ),
    "write a monitoring report": (
        "s3:PutObject",
        f"arn:aws:s3:::{PROD_BUCKET}/monitoring-reports/abalone-prod/x/constraint_violations.json",
        {},
    ),
    "publish the drift metrics": (
        "cloudwatch:PutMetricData",
        "*",
        {"cloudwatch:namespace": "aws/sagemaker/Endpoints/data-metrics"},
    ),
    "pull the analyzer": (
        "ecr:BatchGetImage",
        f"arn:aws:ecr:{REGION}:156813124566:repository/sagemaker-model-monitor-analyzer",
        {},
    ),
    "start a pipeline's processing job": (
        "sagemaker:CreateProcessingJob",
        sm(PROD, "processing-job", "pipelines-0a1b-Preprocess-x"),
        {},
    ),
    "start the transform": (
        "sagemaker:CreateTransformJob",
        sm(PROD, "transform-job", "pipelines-0a1b-Transform-x"),
        {},
    ),
    "pass itself to them": ("iam:PassRole", EXECUTION_ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    "write batch outputs in prod's bucket": ("s3:PutObject", f"{PROD_BATCH}/exec-1/predictions/0.csv.out", {}),
    "list the run history": (
        "s3:ListBucket",
        f"arn:aws:s3:::{PROD_BUCKET}",
        {"s3:prefix": "batch-inference/abalone/prod/history/"},
    ),
    "emit the retraining event": (
        "events:PutEvents",
        f"arn:aws:events:{REGION}:{PROD}:event-bus/default",
        {"events:source": "mlops.abalone.batch-inference"},
    ),
}
MODEL_ROLE_NEVER = {
    "write into the tooling bucket": ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/batch-inference/abalone/prod/x.csv", {}),
    "overwrite a baseline": ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/{BASELINES[0]}", {}),
    "list the whole capture bucket": ("s3:ListBucket", f"arn:aws:s3:::{PROD_BUCKET}", {}),
    "events of another source": (
        "events:PutEvents",
        f"arn:aws:events:{REGION}:{PROD}:event-bus/default",
        {"events:source": "aws.sagemaker"},
    ),
    "the tooling account's bus": (
        "events:PutEvents",
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        {"events:source": "mlops.abalone.batch-inference"},
    ),
    "a job in the tooling account": ("sagemaker:CreateProcessingJob", sm(ACCOUNT, "processing-job", "pipelines-x"), {}),
    "publish to another namespace": ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/SageMaker"}),
}


@pytest.mark.parametrize(("action", "resource", "context"), MODEL_ROLE_NEEDS.values(), ids=MODEL_ROLE_NEEDS.keys())
def test_the_prod_model_role_runs_the_monitor_and_batch_inference(tooling, prod, action, resource, context):
    identity = prod.identity_policies("ModelExecutionRole")
    if action.startswith("ecr:"):  # AWS's image repositories admit every account: the identity side decides
        assert decide(Request(action, resource, principal={"AWS": EXECUTION_ROLE}), identity) == ALLOW
        return
    assert decision(tooling, prod, EXECUTION_ROLE, identity, action, resource, context) == ALLOW


@pytest.mark.parametrize(("action", "resource", "context"), MODEL_ROLE_NEVER.values(), ids=MODEL_ROLE_NEVER.keys())
def test_the_prod_model_role_does_nothing_more(tooling, prod, action, resource, context):
    identity = prod.identity_policies("ModelExecutionRole")
    assert decision(tooling, prod, EXECUTION_ROLE, identity, action, resource, context) != ALLOW


def test_the_prod_model_role_reads_the_registered_baselines_and_feature_code_read_only(tooling, prod):
    identity = prod.identity_policies("ModelExecutionRole")
    for key in (*BASELINES, FEATURE_CODE, CHECK_CONFIG):
        assert reads_object(tooling, prod, EXECUTION_ROLE, identity, key), key
    # still not the data, the test split or the evaluation; and no other prod principal reads the baselines
    for key in ("data/abalone.csv", "abalone-build/exec-1/Split/test/test.csv", EVALUATION):
        assert not reads_object(tooling, prod, EXECUTION_ROLE, identity, key), key
    everything = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    assert not reads_object(tooling, prod, f"arn:aws:iam::{PROD}:role/Admin", everything, BASELINES[0])


def test_the_prod_boundary_is_the_name_deploy_derives_and_only_starts_prods_pipelines(prod):
    boundary = prod.template["Resources"]["BatchTriggerBoundary"]
    assert prod.resolve(boundary["Properties"]["ManagedPolicyName"]) == BOUNDARY.rsplit("/", 1)[1]
    document = prod.resolve(boundary["Properties"]["PolicyDocument"])
    start = "sagemaker:StartPipelineExecution"
    assert decide(Request(start, sm(PROD, "pipeline", "abalone-batch-inference-prod")), [document]) == ALLOW
    assert decide(Request(start, sm(PROD, "pipeline", "abalone-batch-inference-staging")), [document]) != ALLOW
    assert decide(Request("iam:PassRole", EXECUTION_ROLE), [document]) != ALLOW
