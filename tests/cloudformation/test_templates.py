"""The project template: cfn-lint clean, its security promises hold, and it matches the Lambdas' code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from lambdas.model_trigger import handler as trigger_handler
from lambdas.seed_code import seeding

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cloudformation" / "project.yml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def template() -> dict:
    return cfn_yaml.load(str(TEMPLATE))


def resources(template, kind: str) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_templates_are_cfn_lint_clean():
    templates = sorted(str(p) for p in (ROOT / "cloudformation").glob("*.yml"))
    result = subprocess.run([str(BIN / "cfn-lint"), *templates], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- keyless GitLab access -----------------------------------------------------------------------
# Which token may assume which role, and what the build and staging roles may do to production, is
# decided by a policy evaluator over the rendered policies: test_access_matrix.py.


def test_no_identity_policy_grants_every_action(template):
    for name, role in {
        **resources(template, "AWS::IAM::Role"),
        **resources(template, "AWS::IAM::ManagedPolicy"),
    }.items():
        documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
        documents += [role["Properties"]["PolicyDocument"]] if "PolicyDocument" in role["Properties"] else []
        for document in documents:
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], f"{name} {statement['Sid']}"


# -- storage and events --------------------------------------------------------------------------
def test_artifact_bucket_is_encrypted_versioned_private_and_tls_only(template):
    bucket = template["Resources"]["ArtifactBucket"]["Properties"]
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["ProjectKey", "Arn"]}}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    (deny_plain_http,) = [
        s
        for s in template["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Condition", {}).get("Bool") == {"aws:SecureTransport": "false"}
    ]
    assert deny_plain_http["Effect"] == "Deny" and deny_plain_http["Action"] == "s3:*"


def test_approval_rule_matches_what_the_trigger_accepts_and_retries_into_the_dlq(template):
    rule = template["Resources"]["ApprovalRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == [trigger_handler.EVENT_SOURCE]
    assert pattern["detail-type"] == [trigger_handler.EVENT_DETAIL_TYPE]
    assert pattern["detail"]["ModelPackageGroupName"] == [{"Ref": "SageMakerProjectName"}]
    assert tuple(pattern["detail"]["ModelApprovalStatus"]) == trigger_handler.TRIGGERING_STATUSES
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    function = template["Resources"]["TriggerFunction"]["Properties"]
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}


# -- the template and the Lambda code agree ------------------------------------------------------
def test_trigger_function_gets_every_setting_its_code_reads(template):
    variables = template["Resources"]["TriggerFunction"]["Properties"]["Environment"]["Variables"]
    read = {"GITLAB_URL", "TRIGGER_SECRET_ARN", "MODEL_PACKAGE_GROUP_NAME", "IDEMPOTENCY_TABLE"}
    source = Path(trigger_handler.__file__).read_text()
    assert read == set(re.findall(r'"([A-Z_]+)",?\n', source.split("names = {")[1].split("}")[0]))
    assert read <= set(variables)
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # Powertools' default key
    assert table["TimeToLiveSpecification"]["AttributeName"] == "expiration"  # and its expiry attribute


def test_seed_resource_sends_every_property_the_seed_code_needs(template):
    properties = set(template["Resources"]["SeedRepositoriesResource"]["Properties"])
    handler_reads = {"GitLabTokenSecretId", "SeedBucket", "ModelBuildSeedKey", "ModelDeploySeedKey", "TriggerSecretArn"}
    assert set(seeding.PROPERTIES) | set(seeding.OPTIONAL_PROPERTIES) | handler_reads | {"ServiceToken"} == properties


@pytest.mark.parametrize("function", ["TriggerFunction", "SeedFunction"])
def test_function_handlers_exist_where_the_zip_puts_them(template, function):
    module, _, name = template["Resources"][function]["Properties"]["Handler"].rpartition(".")
    path = ROOT / "cloudformation" / (module.replace(".", "/") + ".py")
    assert path.is_file() and f"def {name}(" in path.read_text()


# -- taskcat -------------------------------------------------------------------------------------
def taskcat_schema() -> Path:
    found = sorted(ROOT.glob(".venv-taskcat/lib/python*/site-packages/taskcat/cfg/config_schema.json"))
    if not found:
        pytest.skip("taskcat is not installed: `make taskcat-lint` creates .venv-taskcat (taskcat pins jsonschema<4)")
    return found[0]


def test_taskcat_config_validates_against_taskcats_own_schema():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(taskcat_schema()), str(ROOT / ".taskcat.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_taskcat_tests_give_every_required_parameter_and_packaged_asset(template):
    config = yaml.safe_load((ROOT / ".taskcat.yml").read_text())
    required = {name for name, p in template["Parameters"].items() if "Default" not in p}
    for name, test in config["tests"].items():
        given = set(config["project"].get("parameters", {})) | set(test.get("parameters", {}))
        assert required <= given, f"taskcat test {name} misses {sorted(required - given)}"
    keys = [v for k, v in config["project"]["parameters"].items() if k.endswith("Key")]
    packaged = {"seed_code.zip", "model_trigger.zip", "alert_gate.zip", "model-build.zip", "model-deploy.zip"}
    assert {key.rsplit("/", 1)[1] for key in keys} == packaged


def test_the_retraining_decision_gets_least_privilege(template):
    """RetrainingTarget pipeline: the trigger function may start the build pipeline only, and only then; the
    retraining rule alone may invoke it for that event and dead-letter into the queue."""
    resources_ = template["Resources"]
    policy = resources_["TriggerStartsBuildPipeline"]
    assert policy["Condition"] == "RetrainViaPipeline"
    assert template["Conditions"]["RetrainViaPipeline"] == {"Fn::Equals": [{"Ref": "RetrainingTarget"}, "pipeline"]}
    assert policy["Properties"]["RoleName"] == {"Ref": "TriggerFunctionRole"}
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sagemaker:StartPipelineExecution"
    build_pipeline = (
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${SageMakerProjectName}-build"
    )
    assert statement["Resource"] == {"Fn::Sub": build_pipeline}
    role = resources_["TriggerFunctionRole"]["Properties"]
    granted = [s["Action"] for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert not any("sagemaker" in str(action) for action in granted)  # nothing of SageMaker without the condition
    permission = resources_["RetrainingRuleInvokesTrigger"]["Properties"]
    assert permission["SourceArn"] == {"Fn::GetAtt": ["RetrainingRule", "Arn"]}
    assert (
        permission["SourceAccount"] == {"Ref": "AWS::AccountId"} and permission["Principal"] == "events.amazonaws.com"
    )
    dead_letters = resources_["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert dead_letters["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {"Fn::GetAtt": ["ApprovalRule", "Arn"]},
        {"Fn::GetAtt": ["RetrainingRule", "Arn"]},
    ]
    environment = resources_["TriggerFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["RETRAINING_TARGET"] == {"Ref": "RetrainingTarget"}
    assert template["Parameters"]["RetrainingTarget"]["AllowedValues"] == ["gitlab", "pipeline"]
    assert template["Parameters"]["RetrainingTarget"]["Default"] == "gitlab"


def test_the_artifact_bucket_sends_its_events_to_eventbridge(template):
    bucket = template["Resources"]["ArtifactBucket"]["Properties"]
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
