"""The batch pipeline's triggers on the local stack: model-deploy/batch-schedule-template.yml deployed with
CloudFormation gives a real schedule and a real rule; the schedule fires by the scheduler's own path (now, and on
its cron with an injected clock); an object landing under the input prefix starts the pipeline through the rule.

The target is a one-step pipeline (a Condition on its parameters) named as the batch pipeline, so each start is
real and cheap; tests/test_batch_inference.py runs the batch pipeline itself."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

import pytest

from local_aws.events.rules import read_deliveries
from local_aws.scheduler import expressions, invoke
from local_aws.scheduler.ticker import Ticker

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "model-deploy" / "batch-schedule-template.yml"
BUCKET = "sagemaker-local-artifacts"
PARAMETERS = [
    "InputDataUrl",
    "ShardCount",
    "RetrainDistanceThreshold",
    "RetrainNdcgThreshold",
    "RetrainBreaches",
    "RetrainWindow",
]


def one_step_pipeline() -> str:
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [{"Name": name, "Type": "String", "DefaultValue": "unset"} for name in PARAMETERS],
            "Steps": [
                {
                    "Name": "Check",
                    "Type": "Condition",
                    "Arguments": {
                        "Conditions": [
                            {"Type": "Equals", "LeftValue": {"Get": "Parameters.ShardCount"}, "RightValue": "3"}
                        ],
                        "IfSteps": [],
                        "ElseSteps": [],
                    },
                }
            ],
        }
    )


def deploy(local_stack, stack_name: str, pipeline: str, prefix: str, **overrides: str) -> dict:
    cloudformation = local_stack.client("cloudformation")
    parameters = {
        "ProjectName": "abalone",
        "StageName": "staging",
        "PipelineName": pipeline,
        "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone/1",
        "InputBucket": BUCKET,
        "InputPrefix": prefix,
        "ShardCount": "3",
        "ScheduleTimezone": "Europe/Stockholm",
        # The project template's boundary for the stage's trigger roles (moto checks only the ARN's form).
        "PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/abalone-batch-staging-boundary",
    } | overrides
    given = [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()]
    try:
        cloudformation.describe_stacks(StackName=stack_name)
        cloudformation.update_stack(
            StackName=stack_name, TemplateBody=TEMPLATE.read_text(), Parameters=given, Capabilities=["CAPABILITY_IAM"]
        )
    except cloudformation.exceptions.ClientError:
        cloudformation.create_stack(
            StackName=stack_name, TemplateBody=TEMPLATE.read_text(), Parameters=given, Capabilities=["CAPABILITY_IAM"]
        )
    outputs = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


@pytest.fixture(scope="module")
def triggers(local_stack):
    suffix = uuid.uuid4().hex[:6]
    pipeline = f"abalone-batch-inference-t{suffix}"
    sagemaker = local_stack.client("sagemaker")
    sagemaker.create_pipeline(
        PipelineName=pipeline, PipelineDefinition=one_step_pipeline(), RoleArn="arn:aws:iam::123456789012:role/x"
    )
    prefix = f"batch-inference/abalone/staging-{suffix}/input/"
    outputs = deploy(local_stack, f"batch-{suffix}", pipeline, prefix)
    return {"pipeline": pipeline, "prefix": prefix, "stack": f"batch-{suffix}", **outputs}


def executions(local_stack, pipeline: str) -> list[dict]:
    return local_stack.client("sagemaker").list_pipeline_executions(PipelineName=pipeline, MaxResults=100)[
        "PipelineExecutionSummaries"
    ]


def parameters_of(local_stack, execution_arn: str) -> dict[str, str]:
    answer = local_stack.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
    return {p["Name"]: p["Value"] for p in answer["PipelineParameters"]}


def test_cloudformation_makes_the_schedule_and_the_rule_with_their_targets(local_stack, triggers):
    schedule = local_stack.client("scheduler").get_schedule(Name=triggers["ScheduleName"])
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Stockholm"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"].endswith(f":pipeline/{triggers['pipeline']}")
    assert schedule["Target"]["RoleArn"] == triggers["ScheduleRoleArn"]
    listed = {p["Name"]: p["Value"] for p in schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]}
    assert listed["InputDataUrl"] == f"s3://{BUCKET}/{triggers['prefix']}" and listed["ShardCount"] == "3"
    events = local_stack.client("events")
    rule = events.describe_rule(Name=triggers["InputRuleName"])
    assert json.loads(rule["EventPattern"])["detail"]["object"]["key"] == [{"prefix": triggers["prefix"]}]
    (target,) = events.list_targets_by_rule(Rule=triggers["InputRuleName"])["Targets"]
    assert target["Arn"] == schedule["Target"]["Arn"] and target["RoleArn"].endswith(
        triggers["stack"] + "-EventsRole-" + target["RoleArn"].rsplit("-", 1)[-1]
    )


def test_fire_now_assumes_the_targets_role_and_passes_its_parameters(local_stack, triggers):
    fired = invoke.fire(triggers["ScheduleName"], local_stack.environ(), state_dir=local_stack.state_dir)
    assert fired.role_arn == triggers["ScheduleRoleArn"]
    # The execution was started with the role's temporary credentials, not the stack's keys.
    assert (
        fired.caller.startswith("arn:aws:sts::123456789012:assumed-role/")
        and fired.caller.split("/")[1] == triggers["ScheduleRoleArn"].rsplit("/", 1)[-1]
    )
    assert fired.pipeline_execution_arn in [
        e["PipelineExecutionArn"] for e in executions(local_stack, triggers["pipeline"])
    ]
    passed = parameters_of(local_stack, fired.pipeline_execution_arn)
    assert passed["ShardCount"] == "3" and passed["InputDataUrl"] == f"s3://{BUCKET}/{triggers['prefix']}"
    assert invoke.read_invocations(local_stack.state_dir)[-1]["pipeline_execution_arn"] == fired.pipeline_execution_arn


def test_the_cli_fires_a_schedule_and_refuses_a_disabled_one(local_stack, triggers):
    import subprocess

    command = [
        str(REPO_ROOT / "scripts" / "local-stack"),
        "--state-dir",
        str(local_stack.state_dir),
        "schedule",
        "fire",
    ]
    fired = subprocess.run([*command, triggers["ScheduleName"]], capture_output=True, text=True, check=False)
    assert fired.returncode == 0, fired.stderr
    assert "started arn:aws:sagemaker:" in fired.stdout and "ShardCount = 3" in fired.stdout
    suffix = uuid.uuid4().hex[:6]
    disabled = deploy(local_stack, f"off-{suffix}", triggers["pipeline"], f"off-{suffix}/", ScheduleState="DISABLED")
    before = len(executions(local_stack, triggers["pipeline"]))
    refused = subprocess.run([*command, disabled["ScheduleName"]], capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "is DISABLED" in refused.stderr and "ScheduleState" in refused.stderr
    assert len(executions(local_stack, triggers["pipeline"])) == before
    missing = subprocess.run([*command, "no-such-schedule"], capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_a_schedule_whose_pipeline_does_not_exist_fails_naming_it(local_stack, triggers):
    scheduler = local_stack.client("scheduler")
    target = scheduler.get_schedule(Name=triggers["ScheduleName"])["Target"]
    name = f"gone-{uuid.uuid4().hex[:6]}"
    gone = {**target, "Arn": target["Arn"].rsplit("/", 1)[0] + "/no-such-pipeline"}
    scheduler.create_schedule(
        Name=name, ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"}, Target=gone
    )
    with pytest.raises(invoke.ScheduleError, match="StartPipelineExecution of .*no-such-pipeline.* failed"):
        invoke.fire(name, local_stack.environ(), state_dir=local_stack.state_dir)
    assert invoke.read_invocations(local_stack.state_dir)[-1]["status"] == "refused"


def test_a_role_whose_trust_does_not_admit_the_scheduler_is_refused(local_stack, triggers):
    iam, scheduler = local_stack.client("iam"), local_stack.client("scheduler")
    name = f"lambda-only-{uuid.uuid4().hex[:6]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    target = scheduler.get_schedule(Name=triggers["ScheduleName"])["Target"] | {"RoleArn": role}
    scheduler.create_schedule(
        Name=name, ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target
    )
    with pytest.raises(invoke.ScheduleError, match="scheduler.amazonaws.com may not assume .*Principal"):
        invoke.fire(name, local_stack.environ())


def test_enabled_schedules_fire_once_per_due_time_in_their_timezone(local_stack, triggers):
    scheduler = local_stack.client("scheduler")
    target = scheduler.get_schedule(Name=triggers["ScheduleName"])["Target"]
    name = f"cron-{uuid.uuid4().hex[:6]}"
    # Its own schedule group, so this ticker watches this schedule only (the stack's own ticker watches all).
    scheduler.create_schedule_group(Name=name)
    # 02:00 in Stockholm is 01:00 UTC in winter.
    scheduler.create_schedule(
        Name=name,
        GroupName=name,
        ScheduleExpression="cron(0 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Stockholm",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    now = [dt.datetime(2026, 12, 2, 0, 30, tzinfo=dt.UTC)]
    ticker = Ticker(local_stack.environ(), clock=lambda: now[0], state_dir=local_stack.state_dir, group=name)
    ours = lambda fired: [f for f in fired if f.schedule == name]  # noqa: E731 - other tests' schedules exist too
    assert ours(ticker.tick()) == []  # first sight: watched from now on
    now[0] = dt.datetime(2026, 12, 2, 0, 59, tzinfo=dt.UTC)
    assert ours(ticker.tick()) == []  # 01:59 in Stockholm: not yet
    now[0] = dt.datetime(2026, 12, 2, 1, 0, 30, tzinfo=dt.UTC)
    (first,) = ours(ticker.tick())
    assert first.due == "2026-12-02T01:00:00+00:00"
    assert ours(ticker.tick()) == []  # the same due time never fires twice
    now[0] = dt.datetime(2026, 12, 4, 1, 30, tzinfo=dt.UTC)  # two days later: two due times, each once
    assert [f.due for f in ours(ticker.tick())] == ["2026-12-03T01:00:00+00:00", "2026-12-04T01:00:00+00:00"]
    scheduler.update_schedule(
        Name=name,
        GroupName=name,
        ScheduleExpression="cron(0 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Stockholm",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
        State="DISABLED",
    )
    now[0] = dt.datetime(2026, 12, 6, 1, 30, tzinfo=dt.UTC)
    assert ours(ticker.tick()) == []  # a disabled schedule does not fire


def test_an_object_under_the_input_prefix_starts_the_pipeline_and_elsewhere_does_not(local_stack, triggers):
    s3 = local_stack.client("s3")
    before = len(executions(local_stack, triggers["pipeline"]))
    s3.put_object(Bucket=BUCKET, Key=f"elsewhere/{uuid.uuid4().hex}.csv", Body=b"1,2\n")
    key = f"{triggers['prefix']}batch-{uuid.uuid4().hex[:6]}.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1,2\n")
    deadline = time.monotonic() + 90  # generous: the machine is shared
    while time.monotonic() < deadline:
        delivered = [d for d in read_deliveries(local_stack.state_dir) if d["rule"] == triggers["InputRuleName"]]
        if delivered:
            break
        time.sleep(0.2)
    assert delivered, "the input rule delivered nothing within 90 s (see the stack's events.jsonl and server.log)"
    # The object elsewhere was put first, and the bus routes in order: it was routed before this delivery.
    (delivery,) = delivered
    assert delivery["status"] == "delivered", delivery
    assert len(executions(local_stack, triggers["pipeline"])) == before + 1  # the object elsewhere started none
    assert parameters_of(local_stack, delivery["result"])["InputDataUrl"] == f"s3://{BUCKET}/{triggers['prefix']}"
    from local_aws.events.bus import read_events

    (event,) = [e for e in read_events(local_stack.state_dir, "Object Created") if e["detail"]["object"]["key"] == key]
    assert event["source"] == "aws.s3" and event["resources"] == [f"arn:aws:s3:::{BUCKET}"]
    assert event["detail"]["reason"] == "PutObject" and event["detail"]["object"]["size"] == 4
    assert set(event["detail"]["object"]) >= {"key", "size", "etag", "sequencer"}


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "until", "expected"),
    [
        # Summer time: 02:00 in Stockholm is 00:00 UTC; the window is (after, until].
        (
            "cron(0 2 * * ? *)",
            "Europe/Stockholm",
            "2026-07-01T00:00",
            "2026-07-02T00:00",
            ["2026-07-02T00:00:00+00:00"],
        ),
        (
            "cron(30 8 ? * 2-6 *)",
            "UTC",
            "2026-12-04T09:00",
            "2026-12-08T09:00",
            ["2026-12-07T08:30:00+00:00", "2026-12-08T08:30:00+00:00"],
        ),  # MON-FRI
        (
            "cron(0 0 ? * 1 *)",
            "UTC",
            "2026-12-01T00:00",
            "2026-12-08T00:00",
            ["2026-12-06T00:00:00+00:00"],
        ),  # 1 = Sunday
        ("cron(0 12 1 * ? 2027)", "UTC", "2026-11-30T00:00", "2027-01-02T00:00", ["2027-01-01T12:00:00+00:00"]),
        (
            "rate(6 hours)",
            "UTC",
            "2026-12-01T00:00",
            "2026-12-01T13:00",
            ["2026-12-01T06:00:00+00:00", "2026-12-01T12:00:00+00:00"],
        ),
        (
            "at(2026-12-24T18:00:00)",
            "America/New_York",
            "2026-12-24T00:00",
            "2026-12-25T00:00",
            ["2026-12-24T23:00:00+00:00"],
        ),
    ],
)
def test_schedule_expressions(expression, timezone, after, until, expected):
    def parse(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    due = expressions.due_times(expression, timezone, parse(after), parse(until), anchor=parse("2026-12-01T00:00"))
    assert [when.isoformat() for when in due] == expected


@pytest.mark.parametrize(
    ("expression", "timezone", "message"),
    [
        ("cron(0 2 * * *)", "UTC", "takes six"),
        ("cron(0 2 * * 1 *)", "UTC", "must be '?'"),
        ("rate(1 hours)", "UTC", r"rate\(1 hour\)"),
        ("every day", "UTC", "is not at"),
        ("cron(0 2 * * ? *)", "Mars/Olympus", "IANA"),
    ],
)
def test_malformed_expressions_say_what_is_expected(expression, timezone, message):
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with pytest.raises(expressions.ExpressionError, match=message):
        expressions.due_times(expression, timezone, now, now + dt.timedelta(days=1))


def test_the_trust_check_evaluates_the_source_conditions_the_services_set():
    from local_aws.sagemaker.pipeline_targets import TargetError, check_trust

    role = "arn:aws:iam::123456789012:role/r"
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ]
    }
    source = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s"
    check_trust(trust, role, service="scheduler.amazonaws.com", source_account="123456789012", source_arn=source)
    with pytest.raises(
        TargetError, match="StringEquals aws:SourceAccount '123456789012' does not admit '210987654321'"
    ):
        check_trust(trust, role, service="scheduler.amazonaws.com", source_account="210987654321", source_arn=source)
    with pytest.raises(TargetError, match="no statement allows events.amazonaws.com"):
        check_trust(trust, role, service="events.amazonaws.com", source_account="123456789012", source_arn=source)
    trust["Statement"][0]["Condition"] = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    with pytest.raises(TargetError, match="IpAddress is not evaluated"):
        check_trust(trust, role, service="scheduler.amazonaws.com", source_account="123456789012", source_arn=source)


def test_the_tickers_thread_fires_what_falls_due_and_stops(local_stack, triggers):
    """The loop the stack runs (`local_aws.scheduler.start`), here with a short interval and an injected clock."""
    scheduler = local_stack.client("scheduler")
    name = f"thread-{uuid.uuid4().hex[:6]}"
    scheduler.create_schedule_group(Name=name)
    target = scheduler.get_schedule(Name=triggers["ScheduleName"])["Target"]
    scheduler.create_schedule(
        Name=name,
        GroupName=name,
        ScheduleExpression="at(2026-12-24T18:00:00)",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
        ActionAfterCompletion="DELETE",
    )
    times = iter(
        [dt.datetime(2026, 12, 24, 17, 59, tzinfo=dt.UTC)] + [dt.datetime(2026, 12, 24, 18, 1, tzinfo=dt.UTC)] * 10_000
    )
    ticker = Ticker(local_stack.environ(), clock=lambda: next(times), state_dir=local_stack.state_dir, group=name)
    ticker.start(interval=0.1)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and scheduler.list_schedules(GroupName=name)["Schedules"]:
            time.sleep(0.1)
    finally:
        ticker.stop()
    fired = [i for i in invoke.read_invocations(local_stack.state_dir) if i["schedule"] == name]
    assert [i["due"] for i in fired] == ["2026-12-24T18:00:00+00:00"] and fired[0]["status"] == "started"
    assert scheduler.list_schedules(GroupName=name)["Schedules"] == []  # at() + DELETE: gone after it fired


def test_the_demos_commands_fire_a_schedule_and_upload_a_batch_through_their_own_paths(local_stack, triggers):
    from local_demo import batch_triggers

    fired = batch_triggers.fire_schedule(local_stack, triggers["ScheduleName"])
    assert parameters_of(local_stack, fired.pipeline_execution_arn)["ShardCount"] == "3"
    key = f"{triggers['prefix']}demo-{uuid.uuid4().hex[:6]}.csv"
    started = batch_triggers.upload_batch(local_stack, key, b"1,2\n", timeout=90)
    assert started in [e["PipelineExecutionArn"] for e in executions(local_stack, triggers["pipeline"])]
    # The day's file replaced under the same key: its own run, not the first one's.
    again = batch_triggers.upload_batch(local_stack, key, b"3,4\n", timeout=90)
    assert again != started
    assert again in [e["PipelineExecutionArn"] for e in executions(local_stack, triggers["pipeline"])]
    with pytest.raises(batch_triggers.TriggerTimeout, match="no rule started a pipeline"):
        batch_triggers.upload_batch(local_stack, f"elsewhere/{uuid.uuid4().hex}.csv", b"x", timeout=2)
