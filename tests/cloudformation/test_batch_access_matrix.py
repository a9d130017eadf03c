"""What the deploy repo's batch jobs do, decided on the rendered project template for the role that does it.

The action lists are the calls of model-deploy/deploy/batch (and of SDK v3's Pipeline.upsert: CreatePipeline, on
an existing one UpdatePipeline + ListTags + AddTags) and what CloudFormation does with the deploy role's own
credentials for batch-schedule-template.yml (three roles with inline policies and tags, a schedule, two rules with
targets). Each is allowed for its stage's role on its stage's resource and refused on the other stage's and on
another project's; the trigger roles the stack creates cannot be used to climb (a required permissions boundary).
"""

from __future__ import annotations

import pytest

from .policy_evaluator import ALLOW, EXPLICIT_DENY, Request, decide
from .rendered_template import ACCOUNT, BUCKET, REGION, Rendered
from .test_access_matrix import role_decision

ROLE = {"staging": "GitLabDeployStagingRole", "prod": "GitLabDeployProdRole"}
OTHER = {"staging": "prod", "prod": "staging"}


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return Rendered()


def sm(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def names(stage: str, project: str = "abalone") -> dict[str, str]:
    stack = f"sagemaker-{project}-batch-{stage}"
    return {
        "pipeline": sm("pipeline", f"{project}-batch-inference-{stage}"),
        "quality": sm("pipeline", f"{project}-model-quality-{stage}"),
        "execution": sm("pipeline", f"{project}-batch-inference-{stage}/execution/0a1b2c3d4e5f"),
        "model": sm("model", f"{project}-batch-{stage}-v3"),
        "stack": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/1a2b3c",
        # CloudFormation's generated names start with the stack name; the template puts the roles under its path.
        "role": f"arn:aws:iam::{ACCOUNT}:role/{stack}/{stack}-SchedulerRole-1A2B3C4D",
        "schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{stack}-Schedule-1A2B3C4D",
        "rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{stack}-InputRule-1A2B3C4D",
        "boundary": f"arn:aws:iam::{ACCOUNT}:policy/{project}-batch-{stage}-boundary",
        "code": f"arn:aws:s3:::{BUCKET}/batch-inference/{project}/{stage}/code/0123456789abcdef/postprocess.py",
        "config": f"arn:aws:s3:::{BUCKET}/batch-inference/{project}/{stage}/check-config/shap/0123/config.json",
    }


def batch_work(stage: str, project: str = "abalone") -> dict[str, tuple[str, str, dict]]:
    """(action, resource, request context) of each call batch-upsert and the triggers stack make for `stage`."""
    n = names(stage, project)
    tags = {"aws:RequestTag/sagemaker:project-name": project, "aws:RequestTag/stage": stage}
    return {
        "create the batch pipeline": ("sagemaker:CreatePipeline", n["pipeline"], {}),
        "update the batch pipeline": ("sagemaker:UpdatePipeline", n["pipeline"], {}),
        "describe the batch pipeline": ("sagemaker:DescribePipeline", n["pipeline"], {}),
        "retag the batch pipeline": ("sagemaker:AddTags", n["pipeline"], {}),
        "list the pipeline's tags": ("sagemaker:ListTags", n["pipeline"], {}),
        "create the model-quality pipeline": ("sagemaker:CreatePipeline", n["quality"], {}),
        "update the model-quality pipeline": ("sagemaker:UpdatePipeline", n["quality"], {}),
        "create the batch model": ("sagemaker:CreateModel", n["model"], tags),
        "describe the batch model": ("sagemaker:DescribeModel", n["model"], {}),
        "pass the model role to the pipeline": (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/ModelExecutionRole",
            {"iam:PassedToService": "sagemaker.amazonaws.com"},
        ),
        "upload the postprocess code": ("s3:PutObject", n["code"], {}),
        "upload a Clarify config": ("s3:PutObject", n["config"], {}),
        "create the triggers stack": ("cloudformation:CreateStack", n["stack"], {}),
        "update the triggers stack (a rejection disables it)": ("cloudformation:UpdateStack", n["stack"], {}),
        "describe the triggers stack": ("cloudformation:DescribeStacks", n["stack"], {}),
        "create a trigger role with the boundary": (
            "iam:CreateRole",
            n["role"],
            {"iam:PermissionsBoundary": n["boundary"]},
        ),
        "put its inline policy": ("iam:PutRolePolicy", n["role"], {"iam:PermissionsBoundary": n["boundary"]}),
        "tag a trigger role": ("iam:TagRole", n["role"], {}),
        "delete a trigger role": ("iam:DeleteRole", n["role"], {}),
        "pass a trigger role to the scheduler": (
            "iam:PassRole",
            n["role"],
            {"iam:PassedToService": "scheduler.amazonaws.com"},
        ),
        "pass a trigger role to EventBridge": (
            "iam:PassRole",
            n["role"],
            {"iam:PassedToService": "events.amazonaws.com"},
        ),
        "create the schedule": ("scheduler:CreateSchedule", n["schedule"], {}),
        "update the schedule": ("scheduler:UpdateSchedule", n["schedule"], {}),
        "create the input rule": ("events:PutRule", n["rule"], {}),
        "target the pipeline": ("events:PutTargets", n["rule"], {}),
    }


STAGING_RUN = {
    "start the staging run": ("sagemaker:StartPipelineExecution", names("staging")["pipeline"], {}),
    "follow the run": ("sagemaker:DescribePipelineExecution", names("staging")["execution"], {}),
    "list its steps": ("sagemaker:ListPipelineExecutionSteps", names("staging")["execution"], {}),
    "read its predictions": ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/batch-inference/abalone/staging/x/p.csv.out", {}),
    "write the staging sample": (
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/staging-tests/abalone/3/batch-input/s.csv",
        {},
    ),
}


def cases(staged_only: bool = False):
    # staged_only: the resources that are the stage's own (the model role is shared by both stages' pipelines).
    return [
        pytest.param(stage, *case, id=f"{stage}: {name}")
        for stage in ("staging", "prod")
        for name, case in batch_work(stage).items()
        if not staged_only or stage in case[1]
    ]


@pytest.mark.parametrize(("stage", "action", "resource", "context"), cases())
def test_each_stages_deploy_role_does_its_batch_work(rendered, stage, action, resource, context):
    assert role_decision(rendered, ROLE[stage], action, resource, context) == ALLOW


@pytest.mark.parametrize(("action", "resource", "context"), STAGING_RUN.values(), ids=STAGING_RUN.keys())
def test_batch_staging_runs_and_follows_the_staging_pipeline(rendered, action, resource, context):
    assert role_decision(rendered, ROLE["staging"], action, resource, context) == ALLOW


@pytest.mark.parametrize(("stage", "action", "resource", "context"), cases(staged_only=True))
def test_no_stage_touches_the_other_stages_batch_inference(rendered, stage, action, resource, context):
    # The same call on the other stage's resource: an explicit deny, whatever the allows grow into. Reads are
    # left alone (DescribePipeline/DescribeStacks/DescribeModel of the other stage are not a change).
    other = OTHER[stage]
    swapped = resource.replace(f"-{stage}", f"-{other}").replace(f"/{stage}/", f"/{other}/")
    context = {k: (v.replace(f"-{stage}", f"-{other}") if k.startswith("iam:") else v) for k, v in context.items()}
    if "RequestTag/stage" in repr(context):
        context = {**context, "aws:RequestTag/stage": other}
    decision = role_decision(rendered, ROLE[stage], action, swapped, context)
    if action.split(":")[1].startswith(("Describe", "List", "Get")):
        assert decision != ALLOW or action in ("sagemaker:DescribeModel", "sagemaker:ListTags")
    else:
        assert decision == EXPLICIT_DENY, (action, swapped)


def test_production_never_runs_a_batch_pipeline(rendered):
    # production-deploy promotes the pipeline and its schedule; only the schedule (its own role) starts it.
    action, resource, context = STAGING_RUN["start the staging run"]
    assert role_decision(rendered, ROLE["prod"], action, resource.replace("-staging", "-prod"), context) != ALLOW


@pytest.mark.parametrize("stage", ["staging", "prod"])
@pytest.mark.parametrize(
    "name",
    ["create the batch pipeline", "create the triggers stack", "create the schedule", "upload the postprocess code"],
)
def test_no_stage_touches_another_projects_batch_inference(rendered, stage, name):
    action, resource, context = batch_work(stage, project="other")[name]
    assert role_decision(rendered, ROLE[stage], action, resource, context) != ALLOW


def test_the_build_role_never_touches_the_batch_pipelines(rendered):
    # Its ThisProjectsPipelines grant is <project>*, which the batch pipelines' names match.
    for stage in ("staging", "prod"):
        for key in ("pipeline", "quality"):
            for action in ("sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution"):
                resource = names(stage)[key]
                assert role_decision(rendered, "GitLabBuildRole", action, resource, {}) == EXPLICIT_DENY
    build = sm("pipeline", "abalone-build")
    assert role_decision(rendered, "GitLabBuildRole", "sagemaker:UpdatePipeline", build, {}) == ALLOW


# -- the trigger roles cannot be used to climb ------------------------------------------------------------------
ESCALATIONS = {
    "create a role without a boundary": ("iam:CreateRole", "role", {}),
    "create a role under the other stage's boundary": ("iam:CreateRole", "role", {"iam:PermissionsBoundary": "other"}),
    "create a role with an administrator's policy as boundary": (
        "iam:CreateRole",
        "role",
        {"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"},
    ),
    "create a role outside the stack's path": ("iam:CreateRole", "plain-role", {"iam:PermissionsBoundary": "own"}),
    "put a policy on a role without the boundary": ("iam:PutRolePolicy", "role", {}),
    "put a policy on any other role": ("iam:PutRolePolicy", "model-role", {"iam:PermissionsBoundary": "own"}),
    "attach a managed policy to a trigger role": (
        "iam:AttachRolePolicy",
        "role",
        {"iam:PermissionsBoundary": "own", "iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"},
    ),
    "lift a trigger role's boundary": ("iam:DeleteRolePermissionsBoundary", "role", {}),
    "replace a trigger role's boundary": ("iam:PutRolePermissionsBoundary", "role", {"iam:PermissionsBoundary": "own"}),
    "widen the boundary itself": ("iam:CreatePolicyVersion", "own", {}),
    "make the new version default": ("iam:SetDefaultPolicyVersion", "own", {}),
    "pass a trigger role to Lambda": ("iam:PassRole", "role", {"iam:PassedToService": "lambda.amazonaws.com"}),
    "pass a trigger role to SageMaker": ("iam:PassRole", "role", {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    "pass the model role to the scheduler": (
        "iam:PassRole",
        "model-role",
        {"iam:PassedToService": "scheduler.amazonaws.com"},
    ),
}


def escalation(stage: str, resource: str, context: dict) -> tuple[str, dict]:
    n = names(stage)
    where = {
        "role": n["role"],
        "plain-role": f"arn:aws:iam::{ACCOUNT}:role/sagemaker-abalone-batch-{stage}-SchedulerRole-1A2B",
        "model-role": f"arn:aws:iam::{ACCOUNT}:role/ModelExecutionRole",
        "own": n["boundary"],
    }
    values = {"own": n["boundary"], "other": names(OTHER[stage])["boundary"]}
    return where[resource], {k: values.get(v, v) for k, v in context.items()}


@pytest.mark.parametrize("stage", ["staging", "prod"])
@pytest.mark.parametrize(("action", "resource", "context"), ESCALATIONS.values(), ids=ESCALATIONS.keys())
def test_the_deploy_roles_cannot_make_a_trigger_role_into_more(rendered, stage, action, resource, context):
    resource, context = escalation(stage, resource, context)
    assert role_decision(rendered, ROLE[stage], action, resource, context) != ALLOW


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_boundary_caps_a_trigger_role_at_starting_its_stages_pipelines(rendered, stage):
    # Whatever inline policy and trust a trigger role is given, it acts within this boundary.
    boundary = rendered.managed_policy(f"BatchTriggerBoundary{'Staging' if stage == 'staging' else 'Prod'}")
    assert (
        rendered.resolve(
            rendered.template["Resources"][f"BatchTriggerBoundary{'Staging' if stage == 'staging' else 'Prod'}"][
                "Properties"
            ]["ManagedPolicyName"]
        )
        == names(stage)["boundary"].rsplit("/", 1)[1]
    )  # the name deploy/batch/schedule.py derives
    own, other = names(stage), names(OTHER[stage])
    allowed = {own["pipeline"], own["quality"]}
    for resource in (
        own["pipeline"],
        own["quality"],
        other["pipeline"],
        other["quality"],
        sm("pipeline", "abalone-build"),
    ):
        decision = decide(Request("sagemaker:StartPipelineExecution", resource), [boundary])
        assert (decision == ALLOW) == (resource in allowed), resource
    for action, resource in (
        ("sagemaker:CreatePipeline", own["pipeline"]),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/ModelExecutionRole"),
        ("iam:CreateRole", own["role"]),
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/abalone-build/models/abc/model.tar.gz"),
        ("sts:AssumeRole", "*"),
    ):
        assert decide(Request(action, resource), [boundary]) != ALLOW, action


# -- the batch pipelines run as the model execution role ---------------------------------------------------------
JOB = sm("processing-job", "pipelines-0a1b2c3d4e5f-Preprocess-AbCdEf1234")
PIPELINE_WORK = {
    "start a processing job": ("sagemaker:CreateProcessingJob", JOB, {}),
    "start the check jobs' processing": ("sagemaker:DescribeProcessingJob", JOB, {}),
    "start the transform": (
        "sagemaker:CreateTransformJob",
        sm("transform-job", "pipelines-0a1b2c3d4e5f-Transform-x1"),
        {},
    ),
    "pass itself to its jobs": (
        "iam:PassRole",
        f"arn:aws:iam::{ACCOUNT}:role/ModelExecutionRole",
        {"iam:PassedToService": "sagemaker.amazonaws.com"},
    ),
    "serve Clarify's shadow endpoint": ("sagemaker:CreateEndpoint", sm("endpoint", "sm-clarify-abalone-batch-1"), {}),
    "invoke it": ("sagemaker:InvokeEndpoint", sm("endpoint", "sm-clarify-abalone-batch-1"), {}),
    "delete it": ("sagemaker:DeleteEndpoint", sm("endpoint", "sm-clarify-abalone-batch-1"), {}),
    "read the package's feature code": (
        "s3:GetObject",
        f"arn:aws:s3:::{BUCKET}/abalone-build/code/abc/features.py",
        {},
    ),
    "read a registered baseline": (
        "s3:GetObject",
        f"arn:aws:s3:::{BUCKET}/abalone-build/exec-1/DataQualityCheck/constraints.json",
        {},
    ),
    "write the shards": ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/batch-inference/abalone/prod/exec-1/shards/0.csv", {}),
    "write the run history": (
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/batch-inference/abalone/staging/history/x.json",
        {},
    ),
    "list the run history": (
        "s3:ListBucket",
        f"arn:aws:s3:::{BUCKET}",
        {"s3:prefix": "batch-inference/abalone/staging/history/"},
    ),
    "emit its retraining event": (
        "events:PutEvents",
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        {"events:source": "mlops.abalone.batch-inference"},
    ),
    "pull the processing image": (
        "ecr:BatchGetImage",
        f"arn:aws:ecr:{REGION}:141502667606:repository/sagemaker-scikit-learn",
        {},
    ),
    "pull the Clarify image": (
        "ecr:BatchGetImage",
        f"arn:aws:ecr:{REGION}:009676737623:repository/sagemaker-clarify-processing",
        {},
    ),
    "write the jobs' logs": (
        "logs:PutLogEvents",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/ProcessingJobs:log-stream:x",
        {},
    ),
}
PIPELINE_LIMITS = {
    "emit an event as another source": (
        "events:PutEvents",
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        {"events:source": "aws.sagemaker"},
    ),
    "emit as another project": (
        "events:PutEvents",
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        {"events:source": "mlops.other.batch-inference"},
    ),
    "write another project's batch outputs": (
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/batch-inference/other/prod/exec-1/p.csv",
        {},
    ),
    "overwrite a registered model": (
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/abalone-build/models/abc/model.tar.gz",
        {},
    ),
    "list the training data": ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "data/"}),
    "start a training job": ("sagemaker:CreateTrainingJob", sm("training-job", "pipelines-x-Train-y"), {}),
    "start a job not named by a pipeline": ("sagemaker:CreateProcessingJob", sm("processing-job", "mine"), {}),
    "change a served endpoint": ("sagemaker:UpdateEndpoint", sm("endpoint", "abalone-prod"), {}),
    "pass itself to the scheduler": (
        "iam:PassRole",
        f"arn:aws:iam::{ACCOUNT}:role/ModelExecutionRole",
        {"iam:PassedToService": "scheduler.amazonaws.com"},
    ),
    "start a pipeline": ("sagemaker:StartPipelineExecution", names("prod")["pipeline"], {}),
}


@pytest.mark.parametrize(("action", "resource", "context"), PIPELINE_WORK.values(), ids=PIPELINE_WORK.keys())
def test_the_batch_pipelines_run_as_the_model_execution_role(rendered, action, resource, context):
    assert role_decision(rendered, "ModelExecutionRole", action, resource, context) == ALLOW


@pytest.mark.parametrize(("action", "resource", "context"), PIPELINE_LIMITS.values(), ids=PIPELINE_LIMITS.keys())
def test_the_model_execution_role_does_nothing_more_for_batch(rendered, action, resource, context):
    assert role_decision(rendered, "ModelExecutionRole", action, resource, context) != ALLOW


def test_the_call_audit_refuses_what_a_role_may_not_call(rendered):
    # call_audit decides recorded calls (tests/test_batch_deploy.py records production's); it must refuse too.
    from .call_audit import undecided

    upsert = [
        ("sagemaker", "CreatePipeline", {"PipelineName": "abalone-batch-inference-prod", "RoleArn": "arn:x"}),
        ("s3", "PutObject", {"Bucket": "local-bucket", "Key": "batch-inference/abalone/prod/code/0123/postprocess.py"}),
        ("cloudformation", "UpdateStack", {"StackName": "sagemaker-abalone-batch-prod"}),
        ("sts", "GetCallerIdentity", {}),
    ]
    assert undecided(rendered, ROLE["prod"], upsert, "local-bucket") == []
    assert undecided(rendered, ROLE["staging"], upsert, "local-bucket") == [
        (
            "cloudformation:UpdateStack",
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/sagemaker-abalone-batch-prod/x",
        ),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/batch-inference/abalone/prod/code/0123/postprocess.py"),
        ("sagemaker:CreatePipeline", sm("pipeline", "abalone-batch-inference-prod")),
    ]
