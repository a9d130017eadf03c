"""The project's alerts: the template's rules against AWS's documented sample events, the messages their input
transformers render, the alert gate's one-alert-per-window, least privilege of every new policy statement, and
the whole route on the local stack (executor event -> rule -> alert gate Lambda -> SNS topic -> outbox).

Patterns are matched by the stack's TestEventPattern (moto's EventBridge matcher, the one that routes events).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambdas.alert_gate import handler as gate
from local_aws import LocalStack
from local_aws.cloudformation.template import load, resolve
from local_aws.core.lifecycle import ALERT_TOPIC, PROJECT_TEMPLATE
from local_aws.events import transform
from local_aws.sns import outbox

FIXTURES = Path(__file__).parent / "fixtures" / "eventbridge"
ACCOUNT, REGION = "123456789012", "us-east-1"
TEMPLATE = load(PROJECT_TEMPLATE)
RESOURCES = TEMPLATE["Resources"]
ALERT_RULES = (
    "PendingApprovalAlertRule",
    "PipelineFailedAlertRule",
    "PipelineStepFailedAlertRule",
    "BatchDriftAlertRule",
    "RetrainingAlertRule",
)


def sample(name: str, **detail) -> dict:
    event = json.loads((FIXTURES / f"{name}.json").read_text())
    event["detail"].update(detail)
    if name.startswith("batch-inference-") and "project" in detail:  # the batch events' source names the project
        event["source"] = f"mlops.{detail['project']}.batch-inference"
    return event


def references(project: str, region: str = REGION) -> dict:
    return {
        "SageMakerProjectName": project,
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": "sagemaker-test",
        "AlertTopic": f"arn:aws:sns:{region}:{ACCOUNT}:alerts",
        "AlertGateFunction.Arn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:gate",
        "RetrainingTarget": "gitlab",
        "TriggerFunction.Arn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:trigger",
        "DeadLetterQueue.Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:dead-letters",
    }


def rule(logical_id: str, project: str, region: str = REGION) -> dict:
    return resolve(RESOURCES[logical_id]["Properties"], references(project, region))


# The documented samples, as the events each rule is meant for ("myPipeline" is the project of the pipeline
# samples: their pipeline is myPipeline-123; the package sample's group is its own project).
PACKAGE_PROJECT, PIPELINE_PROJECT = "versionedmp-p-idy6c3e1fiqj", "myPipeline"
MEANT_FOR = {
    "PendingApprovalAlertRule": (
        "model-package-state-change",
        {"ModelApprovalStatus": "PendingManualApproval"},
        PACKAGE_PROJECT,
        "us-east-2",
    ),
    "PipelineFailedAlertRule": (
        "pipeline-execution-status-change",
        {"currentPipelineExecutionStatus": "Failed"},
        PIPELINE_PROJECT,
        REGION,
    ),
    "PipelineStepFailedAlertRule": (
        "pipeline-step-status-change",
        {"currentStepStatus": "Failed", "failureReason": 'ClientError: "bucket" does not exist'},
        PIPELINE_PROJECT,
        REGION,
    ),
    # The batch inference's own events (Postprocess), for project "abalone" (the samples are another project's).
    "BatchDriftAlertRule": ("batch-inference-drift-detected", {"project": "abalone"}, "abalone", REGION),
    "RetrainingAlertRule": ("batch-inference-retraining-recommended", {"project": "abalone"}, "abalone", REGION),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("alerts")) as running:
        yield running


def matches(stack: LocalStack, pattern: dict, event: dict) -> bool:
    answer = stack.client("events").test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))
    return answer["Result"]


# ---------------------------------------------------------------- patterns


def test_each_rule_matches_its_documented_event_and_no_other(stack):
    for logical_id, (name, detail, project, region) in MEANT_FOR.items():
        pattern = rule(logical_id, project, region)["EventPattern"]
        assert matches(stack, pattern, sample(name, **detail)), logical_id
        assert not matches(stack, pattern, sample(name)), f"{logical_id} matches the sample's own status"
        for other, (other_name, other_detail, _, _) in MEANT_FOR.items():
            if other != logical_id:
                assert not matches(stack, pattern, sample(other_name, **other_detail)), f"{logical_id} vs {other}"


def test_rules_watch_only_this_projects_pipelines_and_group(stack):
    failed = sample("pipeline-execution-status-change", currentPipelineExecutionStatus="Stopped")
    assert matches(stack, rule("PipelineFailedAlertRule", PIPELINE_PROJECT)["EventPattern"], failed)
    # "myPipeline-123" is not a pipeline of project "my" ("my-" prefix) nor of another project.
    assert not matches(stack, rule("PipelineFailedAlertRule", "my")["EventPattern"], failed)
    assert not matches(stack, rule("PipelineFailedAlertRule", "other")["EventPattern"], failed)
    pending = sample("model-package-state-change", ModelApprovalStatus="PendingManualApproval")
    assert not matches(stack, rule("PendingApprovalAlertRule", "abalone", "us-east-2")["EventPattern"], pending)
    # An update of a pending package (its digests) is no new request.
    updated = sample(
        "model-package-state-change",
        ModelApprovalStatus="PendingManualApproval",
        UpdatedModelPackageFields=["CustomerMetadataProperties"],
    )
    pattern = rule("PendingApprovalAlertRule", PACKAGE_PROJECT, "us-east-2")["EventPattern"]
    assert not matches(stack, pattern, updated)


# ---------------------------------------------------------------- messages


def rendered(logical_id: str) -> object:
    name, detail, project, region = MEANT_FOR[logical_id]
    target = rule(logical_id, project, region)["Targets"][0]
    return transform.render(target, sample(name, **detail), rule_arn=f"arn:aws:events:{region}:{ACCOUNT}:rule/x")


def test_approval_request_is_readable_text_with_version_metrics_and_links():
    name, detail, project, region = MEANT_FOR["PendingApprovalAlertRule"]
    event = sample(name, **detail, CustomerMetadataProperties={"Mse": "4.33", "Rmse": "2.08", "GitCommit": "abc"})
    event["detail"]["CustomerMetadataProperties"]["GitLabPipelineUrl"] = "https://gitlab.example.com/g/b/-/pipelines/9"
    target = rule("PendingApprovalAlertRule", project, region)["Targets"][0]
    text = transform.render(target, event)
    lines = text.splitlines()
    assert lines[0] == f"Model version 2 of SageMaker project {project} awaits your approval."
    assert "MSE 4.33, RMSE 2.08" in text
    assert "GitLab pipeline https://gitlab.example.com/g/b/-/pipelines/9 from commit abc" in text
    assert f"#/model-registry/{project}/2" in text
    assert f'approve --arn {event["detail"]["ModelPackageArn"]} --description "..."' in text
    assert '"' not in lines[0] and "{" not in text  # plain lines, not a JSON dump


def test_failure_messages_are_json_for_the_gate_with_the_reason_as_a_value():
    step = rendered("PipelineStepFailedAlertRule")
    pipeline = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123"
    assert step["key"] == f"{pipeline} Failed"
    assert step["subject"] == "[myPipeline] Pipeline step myprocessingstep1 failed"
    assert "Step myprocessingstep1 (Processing)" in step["message"] and "\nExecution: " in step["message"]
    assert step["reason"] == 'ClientError: "bucket" does not exist'  # quotes survive: a JSON value, not in a string
    execution = rendered("PipelineFailedAlertRule")
    assert execution["key"] == step["key"]  # the execution's failure after its step's: one alert
    assert "Started by: SomeDescription" in execution["message"]
    assert execution["reason"] is None  # the documented execution event has no failureReason


def test_batch_drift_and_retraining_messages_name_the_stage_run_and_figures():
    drift = rendered("BatchDriftAlertRule")
    run = sample("batch-inference-drift-detected")["detail"]["execution_arn"]
    assert drift["key"] == "abalone staging batch drift"  # one alert per stage per window, whatever the run
    assert drift["subject"] == "[abalone] Batch inference drift in staging"
    assert "Violations: 3\nLargest feature distance: 0.412\nAttribution nDCG: 0.861" in drift["message"]
    assert "threshold broken in 2 of the last 3 runs (broken in 1 so far): no retraining yet" in drift["message"]
    assert f"Run:    {run}" in drift["message"] and "model-package/someone-else/3" in drift["message"]
    retrain = rendered("RetrainingAlertRule")
    run = sample("batch-inference-retraining-recommended")["detail"]["execution_arn"]
    assert retrain["key"] == f"{run} retraining"  # every decision alerts
    assert retrain["subject"] == "[abalone] Retraining started by batch drift in staging"
    assert "decided to retrain: threshold broken in 2 of the last 3 runs (2 of the last 3 runs)" in retrain["message"]
    assert "Retraining: gitlab" in retrain["message"] and "{" not in retrain["message"]


def test_the_retraining_rule_targets_the_trigger_function_and_matches_only_the_decision(stack):
    retraining = rule("RetrainingRule", "abalone")
    (target,) = retraining["Targets"]
    assert target["Arn"] == references("abalone")["TriggerFunction.Arn"]  # the approval trigger's function
    decision = sample("batch-inference-retraining-recommended", project="abalone")
    assert matches(stack, retraining["EventPattern"], decision)
    assert not matches(stack, retraining["EventPattern"], sample("batch-inference-drift-detected", project="abalone"))
    assert not matches(stack, retraining["EventPattern"], sample("batch-inference-retraining-recommended"))
    assert not matches(
        stack, retraining["EventPattern"], sample("model-package-state-change", ModelApprovalStatus="Approved")
    )
    # Postprocess emits exactly the source and detail-types the rules wait for.
    from deploy.batch import postprocess

    assert retraining["EventPattern"]["source"] == [postprocess.source_name("abalone")]
    assert retraining["EventPattern"]["detail-type"] == [postprocess.DETAIL_TYPE]
    assert rule("BatchDriftAlertRule", "abalone")["EventPattern"]["detail-type"] == [postprocess.DRIFT_DETAIL_TYPE]


def test_input_transformer_quoting_rules():
    event = sample("pipeline-step-status-change")
    paths = {"step": "$.detail.stepName", "job": "$.detail.metadata.processingJob", "none": "$.detail.missing"}

    def render(template: str):
        return transform.render({"InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}, event)

    # JSON: a bare placeholder is the value as JSON; inside a string, its text; a missing path is null / nothing.
    assert render('{"s": <step>, "j": <job>, "n": <none>, "t": "step <step>!<none>"}') == {
        "s": "myprocessingstep1",
        "j": {"arn": event["detail"]["metadata"]["processingJob"]["arn"]},
        "n": None,
        "t": "step myprocessingstep1!",
    }
    # Text: values without quotes; the quoted-lines form gives plain lines.
    assert render("step <step> is <none>done") == "step myprocessingstep1 is done"
    assert render('"step <step>"\n""\n"said \\"hi\\""') == 'step myprocessingstep1\n\nsaid "hi"'
    assert render("<aws.events.rule-name> fired") == " fired"  # no rule ARN given
    with pytest.raises(transform.TransformError):
        render('{"t": "<job>"}')  # a JSON value spliced into a string breaks the document: refused
    assert transform.render({"InputPath": "$.detail.stepName"}, event) == "myprocessingstep1"


# ---------------------------------------------------------------- the gate


@mock_aws
def test_gate_sends_one_alert_per_key_per_window(monkeypatch):
    dynamodb, sns = boto3.resource("dynamodb", region_name=REGION), boto3.client("sns", region_name=REGION)
    table = dynamodb.create_table(
        TableName="window",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    for name, value in {"ALERT_TOPIC_ARN": topic, "ALERT_WINDOW_TABLE": "window", "ALERT_WINDOW_MINUTES": "60"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    alert = {"key": "p Failed", "subject": "[p] failed\nagain", "message": "m", "reason": "r"}
    assert gate.lambda_handler(alert)["published"] is True
    assert gate.lambda_handler(alert)["published"] is False  # the same failure again: suppressed
    assert gate.lambda_handler({**alert, "key": "p Stopped"})["published"] is True  # another outcome: alerts
    now = time.time()
    assert gate.open_window(table, "later", now, 60) is True
    assert gate.open_window(table, "later", now + 30, 60) is False
    assert gate.open_window(table, "later", now + 61, 60) is True  # the window passed
    assert gate.subject("[p] failed\nagain") == "[p] failed again"
    assert gate.message(alert) == "m\n\nReason: r"
    with pytest.raises(ValueError):
        gate.lambda_handler({"key": "k"})  # a broken template is raised, so the DLQ keeps it


# ---------------------------------------------------------------- least privilege


def statements(resource: str, *path: str) -> list[dict]:
    document = RESOURCES[resource]["Properties"]
    for key in path:
        document = document[key]
    return document["Statement"]


def test_alert_key_admits_only_the_publishers_by_source_account_and_arn():
    allowed = [s for s in statements("AlertKey", "KeyPolicy") if s["Effect"] == "Allow"]
    services = {}
    for statement in allowed:
        principal = statement["Principal"]
        if "AWS" in principal:
            assert principal["AWS"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
            continue
        services[principal["Service"]] = statement
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert set(services) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    events_arn = services["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert events_arn.endswith(":rule/${SageMakerProjectName}-pending-approval-alert")
    assert resolve(RESOURCES["PendingApprovalAlertRule"]["Properties"]["Name"], references("p")) in events_arn.replace(
        "${SageMakerProjectName}", "p"
    )
    alarms_arn = services["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert alarms_arn.endswith(":alarm:${SageMakerProjectName}-*")


def test_topic_policy_allows_publishing_only_to_the_rule_and_project_alarms():
    policy = statements("AlertTopicPolicy", "PolicyDocument")
    allows = [s for s in policy if s["Effect"] == "Allow"]
    assert all(s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": "AlertTopic"} for s in allows)
    by_service = {s["Principal"]["Service"]: s["Condition"] for s in allows}
    assert by_service["events.amazonaws.com"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["PendingApprovalAlertRule", "Arn"]}}
    }
    assert by_service["cloudwatch.amazonaws.com"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_alert_gate_role_is_scoped_to_its_table_topic_keys_and_queue():
    role = RESOURCES["AlertGateFunctionRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = {s["Sid"]: (s["Action"], s["Resource"]) for s in role["Policies"][0]["PolicyDocument"]["Statement"]}
    assert granted == {
        "Logs": (["logs:CreateLogStream", "logs:PutLogEvents"], {"Fn::Sub": "${AlertGateLogGroup.Arn}:*"}),
        "OneAlertPerWindow": ("dynamodb:PutItem", {"Fn::GetAtt": ["AlertWindowTable", "Arn"]}),
        "PublishAlerts": ("sns:Publish", {"Ref": "AlertTopic"}),
        "AlertKey": (["kms:Decrypt", "kms:GenerateDataKey"], {"Fn::GetAtt": ["AlertKey", "Arn"]}),
        "ProjectKeyForTableAndEnvironment": (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            {"Fn::GetAtt": ["ProjectKey", "Arn"]},
        ),
        "DeadLetters": ("sqs:SendMessage", {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}),
    }
    for permission in (
        "PipelineFailedRuleInvokesAlertGate",
        "PipelineStepFailedRuleInvokesAlertGate",
        "BatchDriftRuleInvokesAlertGate",
        "RetrainingRuleInvokesAlertGate",
    ):
        properties = RESOURCES[permission]["Properties"]
        assert properties["Principal"] == "events.amazonaws.com" and "SourceArn" in properties
        assert properties["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_alarms_notify_the_topic():
    assert RESOURCES["TriggerDeadLettersAlarm"]["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]
    endpoint = load(Path(__file__).parents[1] / "model-deploy" / "endpoint-config-template.yml")["Resources"]
    for alarm in ("Invocation5xxAlarm", "ModelLatencyAlarm"):
        assert endpoint[alarm]["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlertTopic", [{"Ref": "AlertTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


# ---------------------------------------------------------------- on the local stack


def run_failing_pipeline(stack: LocalStack, name: str) -> None:
    sagemaker = stack.client("sagemaker")
    step = {"Name": "FailOnMse", "Type": "Fail", "Arguments": {"ErrorMessage": "Model MSE 7.1 is above 2.0"}}
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [step]}
    role = f"arn:aws:iam::{ACCOUNT}:role/pipeline"
    sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=role)
    for _ in range(2):  # the same failure twice
        arn = sagemaker.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
        while sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing":
            time.sleep(0.05)


def wait_for_outbox(stack: LocalStack, count: int, timeout: float = 60) -> list[outbox.Message]:
    url, found = outbox.queue_url(stack.client, ALERT_TOPIC), []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += outbox.drain(stack.client, url)
        time.sleep(0.2)
    return found


def test_a_repeated_failure_alerts_once(stack):
    from local_aws.events.rules import read_deliveries

    run_failing_pipeline(stack, "abalone-alert-test")
    # Two executions: two step failures and two execution failures reach the gate; one message leaves it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        gated = [d for d in read_deliveries(stack.state_dir) if d["target"].endswith("AlertGateFunction")]
        if len(gated) >= 4:
            break
        time.sleep(0.2)
    assert [d["status"] for d in gated] == ["delivered"] * 4
    assert [d["result"]["published"] for d in gated] == [True, False, False, False]
    messages = wait_for_outbox(stack, 1, timeout=5)
    assert [m.subject for m in messages] == ["[abalone] Pipeline step FailOnMse failed"]
    assert messages[0].text.endswith("Reason: Model MSE 7.1 is above 2.0")


def test_executor_events_have_the_documented_shape(stack):
    from local_aws.events.bus import read_events

    documented = {
        "step": sample("pipeline-step-status-change"),
        "execution": sample("pipeline-execution-status-change"),
    }
    emitted = {
        "step": [e for e in read_events(stack.state_dir, documented["step"]["detail-type"])],
        "execution": [e for e in read_events(stack.state_dir, documented["execution"]["detail-type"])],
    }
    failed_step = next(e for e in emitted["step"] if e["detail"]["currentStepStatus"] == "Failed")
    assert set(failed_step) == set(documented["step"])
    assert set(failed_step["detail"]) - {"failureReason"} <= set(documented["step"]["detail"]) | {"metadata"}
    assert failed_step["detail"]["failureReason"] == "Model MSE 7.1 is above 2.0"
    assert failed_step["resources"] == [
        failed_step["detail"]["pipelineArn"],
        failed_step["detail"]["pipelineExecutionArn"],
    ]
    finished = next(e for e in emitted["execution"] if e["detail"]["currentPipelineExecutionStatus"] == "Failed")
    expected = set(documented["execution"]["detail"]) - {"pipelineExecutionDescription"} | {"failureReason"}
    assert set(finished["detail"]) == expected
    assert finished["detail"]["previousPipelineExecutionStatus"] == "Executing"


def test_a_new_version_sends_the_approval_request(stack):
    sagemaker = stack.client("sagemaker")
    container = {
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "ModelDataUrl": "s3://sagemaker-local-artifacts/alerts/model.tar.gz",
    }
    metadata = {"Mse": "4.1", "Rmse": "2.02", "GitLabPipelineUrl": "https://gitlab.example.com/p/-/pipelines/7"}
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="abalone",
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={**metadata, "GitCommit": "abc"},
    )["ModelPackageArn"]
    messages = [m for m in wait_for_outbox(stack, 1, timeout=30) if "awaits your approval" in m.text]
    assert len(messages) == 1
    assert (
        f"Model version {arn.rsplit('/', 1)[1]} of SageMaker project abalone awaits your approval." in messages[0].text
    )
    assert "MSE 4.1, RMSE 2.02" in messages[0].text and "pipelines/7" in messages[0].text
