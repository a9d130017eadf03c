"""The seed-code custom resource against moto (S3, Secrets Manager) and an emulated GitLab API."""

from __future__ import annotations

import json
import os
import subprocess
import time

import boto3
import pytest
import requests

from lambdas.seed_code import handler
from project_tools.package_lambdas import seed_archive

from .cfn_testkit import (
    CFN_RESPONSE_URL,
    PERSONAL_TOKEN,
    REGION,
    LambdaContext,
    approval_event,
    create_secret,
    custom_resource_event,
)

NAMESPACE = "ml-team/abalone"
BINARY = bytes(range(256)) * 3 + b"\x00\xff\xfe not utf-8 \x80\x81"


@pytest.fixture
def seed_repo(tmp_path):
    """A git repo with model-build/ and model-deploy/ holding text, binary, empty and executable files."""
    files = {
        "model-build/README.md": b"# model build\n",
        "model-build/pipelines/abalone/pipeline.py": b"print('pipeline')\n",
        "model-build/data/sample.parquet": BINARY,
        "model-build/.gitlab-ci.yml": b"stages: [build]\n",
        "model-build/empty.txt": b"",
        "model-build/scripts/run.sh": b"#!/bin/sh\necho run\n",
        "model-deploy/README.md": b"# model deploy\n",
        "model-deploy/deploy/logo.png": b"\x89PNG\r\n\x1a\n" + BINARY,
        "model-deploy/.gitlab-ci.yml": b"stages: [deploy]\n",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    os.chmod(tmp_path / "model-build/scripts/run.sh", 0o755)  # noqa: S103 - an executable script to seed
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.test"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "seed"], check=True)
    return tmp_path, files


@pytest.fixture
def properties(gitlab_fake, seed_repo):
    root, _ = seed_repo
    namespace_id = gitlab_fake.add_namespace(NAMESPACE)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="template-assets")
    for folder in ("model-build", "model-deploy"):
        s3.put_object(Bucket="template-assets", Key=f"assets/{folder}.zip", Body=seed_archive(folder, root))
    account_role = "arn:aws:iam::123456789012:role/"
    return {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:seed",
        "GitLabUrl": gitlab_fake.url,
        "GitLabTokenSecretId": create_secret("gitlab/seed-token", json.dumps({"token": PERSONAL_TOKEN})),
        "NamespaceId": str(namespace_id),
        "NamespacePath": NAMESPACE,
        "BuildRepoName": "abalone-model-build",
        "DeployRepoName": "abalone-model-deploy",
        "DefaultBranch": "main",
        "ProjectName": "abalone",
        "ProjectId": "p-abc123",
        "Region": REGION,
        "ArtifactBucket": "sagemaker-project-p-abc123",
        "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "ModelPackageGroupName": "abalone",
        "PipelineRoleArn": account_role + "abalone-pipeline",
        "ModelExecutionRoleArn": account_role + "abalone-model",
        "BuildRoleArn": account_role + "abalone-gitlab-build",
        "DeployStagingRoleArn": account_role + "abalone-gitlab-staging",
        "DeployProdRoleArn": account_role + "abalone-gitlab-prod",
        "SeedBucket": "template-assets",
        "ModelBuildSeedKey": "assets/model-build.zip",
        "ModelDeploySeedKey": "assets/model-deploy.zip",
        "TriggerSecretArn": create_secret("abalone/gitlab-trigger", '{"status": "not seeded yet"}'),
    }


def run(request_type, properties, cfn_responses, physical_id=None, context=None, old=None):
    event = custom_resource_event(request_type, properties, physical_id, old)
    handler.lambda_handler(event, context or LambdaContext())
    assert len(cfn_responses) >= 1, "the custom resource did not answer CloudFormation"
    answer = cfn_responses[-1]
    assert answer["RequestId"] == event["RequestId"] and answer["LogicalResourceId"] == "SeedRepositories"
    return answer


def trigger_secret(properties) -> dict:
    raw = boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=properties["TriggerSecretArn"])
    return json.loads(raw["SecretString"])


def test_create_seeds_every_file_byte_for_byte_and_configures_both_projects(
    properties, gitlab_fake, cfn_responses, seed_repo
):
    _, files = seed_repo
    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"].endswith(":abalone-model-build:abalone-model-deploy")
    build = gitlab_fake.project(f"{NAMESPACE}/abalone-model-build")
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    for project, folder in ((build, "model-build/"), (deploy, "model-deploy/")):
        expected = {name.removeprefix(folder): content for name, content in files.items() if name.startswith(folder)}
        seeded = {path: content for path, (content, _) in project.branches["main"].items()}
        assert seeded == expected  # every file, same bytes, nothing extra
        assert list(project.branches) == ["main"] and len(project.commits) == 1
        assert "main" in project.protected
    assert build.branches["main"]["scripts/run.sh"][1] is True  # executable bit kept
    assert build.branches["main"]["README.md"][1] is False

    assert answer["Data"] == {
        "BuildProjectId": str(build.id),
        "BuildProjectUrl": f"{gitlab_fake.url}/{NAMESPACE}/abalone-model-build",
        "DeployProjectId": str(deploy.id),
        "DeployProjectUrl": f"{gitlab_fake.url}/{NAMESPACE}/abalone-model-deploy",
        "BuildSeedBranch": "main",
        "DeploySeedBranch": "main",
    }
    # The trigger secret holds the deploy project's one trigger token, its id and branch, and the build
    # project's (retraining) under "build".
    (trigger,) = deploy.triggers.values()
    (build_trigger,) = build.triggers.values()
    assert trigger_secret(properties) == {
        "project_id": deploy.id,
        "ref": "main",
        "token": trigger["token"],
        "build": {"project_id": build.id, "ref": "main", "token": build_trigger["token"]},
    }
    assert trigger["token"] not in json.dumps(answer) and build_trigger["token"] not in json.dumps(answer)


def test_variables_are_masked_and_protected_where_sensitive(properties, gitlab_fake, cfn_responses):
    run("Create", properties, cfn_responses)
    build = gitlab_fake.project(f"{NAMESPACE}/abalone-model-build").variables
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy").variables

    def flags(variables, key):
        return variables[key]["value"], variables[key]["masked"], variables[key]["protected"]

    assert flags(build, "BUILD_ROLE_ARN") == (properties["BuildRoleArn"], True, False)
    assert flags(build, "SAGEMAKER_PIPELINE_ROLE_ARN") == (properties["PipelineRoleArn"], True, False)
    assert flags(deploy, "STAGING_DEPLOY_ROLE_ARN") == (properties["DeployStagingRoleArn"], True, False)
    assert flags(deploy, "PROD_DEPLOY_ROLE_ARN") == (properties["DeployProdRoleArn"], True, True)
    assert flags(deploy, "MODEL_EXECUTION_ROLE_ARN") == (properties["ModelExecutionRoleArn"], True, False)
    for variables in (build, deploy):
        assert flags(variables, "AWS_REGION") == (REGION, False, False)
        assert flags(variables, "SAGEMAKER_PROJECT_NAME") == ("abalone", False, False)
        assert flags(variables, "SAGEMAKER_PROJECT_ID") == ("p-abc123", False, False)
        assert flags(variables, "ARTIFACT_BUCKET") == ("sagemaker-project-p-abc123", False, False)
        assert flags(variables, "MODEL_PACKAGE_GROUP_NAME") == ("abalone", False, False)
        assert variables["KMS_KEY_ARN"]["masked"] is True
    assert "PROD_DEPLOY_ROLE_ARN" not in build  # each repo gets only the roles it uses


def test_create_again_reuses_projects_commits_nothing_and_keeps_one_trigger(properties, gitlab_fake, cfn_responses):
    first = run("Create", properties, cfn_responses)
    projects_before = set(gitlab_fake.projects)
    second = run("Create", properties, cfn_responses)

    assert second["Status"] == "SUCCESS", second["Reason"]
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert set(gitlab_fake.projects) == projects_before
    for project in gitlab_fake.projects.values():
        assert len(project.commits) == 1  # no second commit: the content is already there
    assert second["Data"]["BuildSeedBranch"] == "" and second["Data"]["DeploySeedBranch"] == ""
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    (trigger,) = deploy.triggers.values()  # rotated, never duplicated
    assert trigger_secret(properties)["token"] == trigger["token"]
    (build_trigger,) = gitlab_fake.project(f"{NAMESPACE}/abalone-model-build").triggers.values()
    assert trigger_secret(properties)["build"]["token"] == build_trigger["token"]


def test_existing_repository_with_user_changes_gets_a_seed_update_branch(properties, gitlab_fake, cfn_responses):
    namespace_id = int(properties["NamespaceId"])
    user_files = {"README.md": b"# our own readme\n", "notes.txt": b"keep me\n"}
    existing = gitlab_fake.add_project(namespace_id, "abalone-model-build", files=user_files)

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["BuildSeedBranch"] == "seed-update"
    main = {path: content for path, (content, _) in existing.branches["main"].items()}
    assert main == user_files  # the default branch is never overwritten
    update = {path: content for path, (content, _) in existing.branches["seed-update"].items()}
    assert update["README.md"] == b"# model build\n" and update["notes.txt"] == b"keep me\n"
    assert update["data/sample.parquet"] == BINARY


def test_update_changes_variables_without_recommitting(properties, gitlab_fake, cfn_responses):
    created = run("Create", properties, cfn_responses)
    changed = {**properties, "DeployProdRoleArn": "arn:aws:iam::123456789012:role/abalone-gitlab-prod-v2"}

    answer = run("Update", changed, cfn_responses, physical_id=created["PhysicalResourceId"], old=properties)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    assert deploy.variables["PROD_DEPLOY_ROLE_ARN"]["value"].endswith("abalone-gitlab-prod-v2")
    assert deploy.variables["PROD_DEPLOY_ROLE_ARN"]["protected"] is True
    assert all(len(project.commits) == 1 for project in gitlab_fake.projects.values())


def test_renaming_one_repository_keeps_the_resource_and_cleans_only_the_old_project(
    properties, gitlab_fake, cfn_responses
):
    created = run("Create", properties, cfn_responses)
    renamed = {**properties, "BuildRepoName": "abalone-build-v2"}

    answer = run("Update", renamed, cfn_responses, physical_id=created["PhysicalResourceId"], old=properties)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    # Same id: CloudFormation sends no Delete for a replaced resource (with the old properties), which
    # would otherwise revoke the trigger token of the deploy project both still use.
    assert answer["PhysicalResourceId"] == created["PhysicalResourceId"]
    old_build = gitlab_fake.project(f"{NAMESPACE}/abalone-model-build")
    new_build = gitlab_fake.project(f"{NAMESPACE}/abalone-build-v2")
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    assert old_build.variables == {} and old_build.branches["main"]  # cleaned, code kept
    assert new_build.variables["BUILD_ROLE_ARN"]["value"] == properties["BuildRoleArn"]
    (trigger,) = deploy.triggers.values()
    assert trigger_secret(properties)["token"] == trigger["token"]
    assert deploy.variables["STAGING_DEPLOY_ROLE_ARN"]["value"] == properties["DeployStagingRoleArn"]

    deleted = run("Delete", renamed, cfn_responses, physical_id=created["PhysicalResourceId"])

    assert deleted["Status"] == "SUCCESS" and deleted["Reason"].startswith("cleaned up")
    assert new_build.variables == {} and deploy.variables == {} and deploy.triggers == {}


def test_delete_revokes_the_trigger_and_variables_but_keeps_the_code(properties, gitlab_fake, cfn_responses):
    created = run("Create", properties, cfn_responses)

    answer = run("Delete", properties, cfn_responses, physical_id=created["PhysicalResourceId"])

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == created["PhysicalResourceId"]
    for project in gitlab_fake.projects.values():
        assert project.variables == {} and project.triggers == {}
        assert project.branches["main"]  # the users' repositories stay
    again = run("Delete", properties, cfn_responses, physical_id=created["PhysicalResourceId"])
    assert again["Status"] == "SUCCESS"  # deleting twice is fine


def test_delete_after_a_failed_create_touches_nothing(properties, gitlab_fake, cfn_responses):
    properties["GitLabTokenSecretId"] = create_secret("gitlab/bad", "glpat-wrong-token-000000")
    failed = run("Create", properties, cfn_responses)
    assert failed["Status"] == "FAILED"
    calls = len(gitlab_fake.calls)

    answer = run("Delete", properties, cfn_responses, physical_id=failed["PhysicalResourceId"])

    assert answer["Status"] == "SUCCESS"
    assert len(gitlab_fake.calls) == calls


def test_delete_succeeds_when_gitlab_refuses_so_the_stack_can_go(properties, gitlab_fake, cfn_responses):
    created = run("Create", properties, cfn_responses)
    gitlab_fake.token = "rotated-away"

    answer = run("Delete", properties, cfn_responses, physical_id=created["PhysicalResourceId"])

    assert answer["Status"] == "SUCCESS"
    assert "clean-up skipped" in answer["Reason"] and "GitlabAuthenticationError" in answer["Reason"]


def test_gitlab_401_answers_failed_with_the_reason(properties, gitlab_fake, cfn_responses):
    properties["GitLabTokenSecretId"] = create_secret("gitlab/revoked", "glpat-revoked-token-0000")

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED"
    assert "401" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith(handler.FAILED_CREATE_PREFIX)


def test_unknown_namespace_404_names_the_fix(properties, cfn_responses):
    properties["NamespaceId"] = "999999"

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED"
    assert "namespace 999999 not found (404)" in answer["Reason"] and "group id" in answer["Reason"]


def test_namespace_path_mismatch_is_refused_because_the_roles_trust_the_path(properties, cfn_responses):
    properties["NamespacePath"] = "someone-else/abalone"

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED" and "GitLabNamespacePath" in answer["Reason"]


def test_gitlab_500_is_retried_with_backoff(properties, gitlab_fake, cfn_responses, no_backoff):
    gitlab_fake.fail_next("POST", r"/repository/commits$", 500, times=2)

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert no_backoff[:2] == [0.1, 0.2]  # python-gitlab's exponential backoff
    assert all(len(project.commits) == 1 for project in gitlab_fake.projects.values())


def test_gitlab_500_that_persists_answers_failed(properties, gitlab_fake, cfn_responses, no_backoff):
    gitlab_fake.fail_next("POST", r"/repository/commits$", 500, times=50)

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED"
    assert "500" in answer["Reason"]
    assert len(no_backoff) == 10  # python-gitlab's default retry budget, then the error


def test_gitlab_timeout_answers_failed(properties, gitlab_fake, cfn_responses, no_backoff):
    gitlab_fake.fail_next("GET", r"^/namespaces/", requests.exceptions.ReadTimeout("read timed out"), times=50)

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED"
    assert "ReadTimeout" in answer["Reason"]
    assert len(no_backoff) == 10


def test_missing_property_answers_failed_naming_it(properties, cfn_responses):
    del properties["DeployRepoName"]

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED"
    assert "DeployRepoName" in answer["Reason"]


def test_a_corrupt_seed_archive_answers_failed(properties, cfn_responses):
    boto3.client("s3").put_object(Bucket="template-assets", Key="assets/model-deploy.zip", Body=b"not a zip")

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "FAILED"
    assert "s3://template-assets/assets/model-deploy.zip is not a zip file" in answer["Reason"]


def test_a_function_about_to_time_out_still_answers_once(properties, gitlab_fake, cfn_responses):
    def slow(_request):
        time.sleep(1.5)
        return 500, {}, "{}"

    gitlab_fake.fail_next("GET", r"^/namespaces/", slow)
    context = LambdaContext(remaining_ms=(handler.cfn_response.SAFETY_MARGIN_SECONDS + 1) * 1000)  # timer at 1 s

    handler.lambda_handler(custom_resource_event("Create", properties), context)

    assert len(cfn_responses) == 1  # the timer's answer; the late outcome is not sent again
    assert cfn_responses[0]["Status"] == "FAILED" and "ran out of time" in cfn_responses[0]["Reason"]


def test_tokens_never_reach_the_logs(properties, gitlab_fake, cfn_responses, all_logs, no_backoff):
    created = run("Create", properties, cfn_responses)
    run("Create", properties, cfn_responses)
    gitlab_fake.fail_next("POST", r"/triggers$", 500, times=50)
    run("Update", properties, cfn_responses, physical_id=created["PhysicalResourceId"])
    run("Delete", properties, cfn_responses, physical_id=created["PhysicalResourceId"])

    logs = all_logs()
    assert "seed failed" in logs and "answered CloudFormation" in logs  # the logs were captured
    secrets = [PERSONAL_TOKEN, trigger_secret(properties)["token"], "X-Amz-Signature"]
    for secret in secrets:
        assert secret not in logs
    assert all(secret not in json.dumps(cfn_responses) for secret in secrets[:2])


def test_an_undeliverable_answer_is_retried_without_a_sleep_after_the_last_attempt(http, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(handler.cfn_response.time, "sleep", sleeps.append)
    http.add("PUT", CFN_RESPONSE_URL, status=403)
    responder = handler.cfn_response.Responder(custom_resource_event("Delete", {}, "x"), LambdaContext(), "x")

    responder.succeeded("x")

    assert len(http.calls) == handler.cfn_response.PUT_ATTEMPTS
    assert sleeps == [1, 2]  # between attempts only: the Lambda's remaining time is not wasted


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ('{"token": null}', 'no string "token" field'),
        ('{"GITLAB_TOKEN": "glpat-x"}', 'no string "token" field'),
        ('{"token": "glpat-unterminated', "not valid JSON"),
        ("  ", "is empty"),
    ],
)
def test_an_unusable_token_secret_is_named_without_echoing_it(secret, problem):
    from lambdas.seed_code.seeding import SeedError, personal_token_from_secret

    with pytest.raises(SeedError, match=problem) as raised:
        personal_token_from_secret(secret)
    assert "bootstrap-gitlab-token" in str(raised.value) and "glpat" not in str(raised.value)


# -- what binds production on GitLab's side --------------------------------------------------------
def test_the_production_role_reaches_only_production_jobs_and_gitlab_settings_back_the_trust_policies(
    properties, gitlab_fake, cfn_responses
):
    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS" and "warning" not in answer["Reason"], answer["Reason"]
    build = gitlab_fake.project(f"{NAMESPACE}/abalone-model-build")
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    prod = deploy.scoped_variables[("PROD_DEPLOY_ROLE_ARN", "production")]
    assert (prod["masked"], prod["protected"]) == (True, True)
    assert {scope for (key, scope) in deploy.scoped_variables if key != "PROD_DEPLOY_ROLE_ARN"} == {"*"}
    # The sub the trust policies match, on both projects; set explicitly, not left to a default.
    assert ("PUT", f"/projects/{deploy.id}") in gitlab_fake.calls and (
        "PUT",
        f"/projects/{build.id}",
    ) in gitlab_fake.calls
    for project in (build, deploy):
        assert project.settings["ci_id_token_sub_claim_components"] == ["project_path", "ref_type", "ref"]
    # Only maintainers (and the trigger token's owner) may set pipeline variables on the deploy project.
    assert deploy.settings["restrict_user_defined_variables"] is True
    assert deploy.settings["ci_pipeline_variables_minimum_override_role"] == "maintainer"
    assert build.settings["restrict_user_defined_variables"] is False  # any branch may build: nothing to bind
    assert {name: env["deploy_access_levels"] for name, env in deploy.protected_environments.items()} == {
        "production": [{"access_level": 40}],
        "staging": [{"access_level": 30}],
    }
    assert build.protected_environments == {}


def test_the_approval_trigger_still_passes_its_variables_after_the_restriction(properties, gitlab_fake, cfn_responses):
    from lambdas.model_trigger import handler as trigger

    run("Create", properties, cfn_responses)
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    settings = trigger.Settings(gitlab_fake.url, properties["TriggerSecretArn"], "abalone", "unused")
    change = trigger.ModelPackageStateChange.model_validate(approval_event())

    trigger.trigger_deploy_pipeline(change, settings)

    (pipeline,) = gitlab_fake.pipelines
    assert pipeline["project_id"] == deploy.id and pipeline["variables"]["MODEL_PACKAGE_ARN"].endswith("/abalone/3")
    # With no_one_allowed the same call fails: that is why the seed chooses maintainer.
    deploy.settings["ci_pipeline_variables_minimum_override_role"] = "no_one_allowed"
    with pytest.raises(trigger.TriggerError, match="Insufficient permissions"):
        trigger.trigger_deploy_pipeline(change, settings)


def test_an_earlier_seeds_unscoped_production_role_is_replaced_not_kept(properties, gitlab_fake, cfn_responses):
    run("Create", properties, cfn_responses)
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    old = dict(deploy.scoped_variables.pop(("PROD_DEPLOY_ROLE_ARN", "production")), environment_scope="*")
    deploy.scoped_variables[("PROD_DEPLOY_ROLE_ARN", "*")] = old  # what the seed set before environment scopes

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert [scope for key, scope in deploy.scoped_variables if key == "PROD_DEPLOY_ROLE_ARN"] == ["production"]
    deleted = run("Delete", properties, cfn_responses, physical_id=answer["PhysicalResourceId"])
    assert deleted["Status"] == "SUCCESS" and deploy.scoped_variables == {}


@pytest.mark.parametrize(("tier", "status"), [("free", "403"), ("ce", "404")])
def test_without_protected_environments_the_seed_succeeds_and_says_what_stays_open(
    properties, gitlab_fake, cfn_responses, tier, status
):
    gitlab_fake.tier = tier

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS"
    for environment in ("production", "staging"):
        assert f"could not protect environment '{environment}' ({status}" in answer["Reason"]
    assert "Premium" in answer["Reason"] and "production jobs' audience" in answer["Reason"]
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    assert deploy.scoped_variables[("PROD_DEPLOY_ROLE_ARN", "production")]["protected"] is True  # the rest holds


def test_a_gitlab_that_ignores_the_settings_is_named_in_a_warning(properties, gitlab_fake, cfn_responses):
    gitlab_fake.known_settings = set()  # an old release: the attributes are silently ignored

    answer = run("Create", properties, cfn_responses)

    assert answer["Status"] == "SUCCESS"
    assert "did not apply ci_id_token_sub_claim_components" in answer["Reason"]
    assert "ci_pipeline_variables_minimum_override_role, restrict_user_defined_variables" in answer["Reason"]
    assert "18.2.2" in answer["Reason"]


def test_the_alert_topic_reaches_the_deploy_project_and_an_older_stack_without_it_still_seeds():
    from lambdas.seed_code import seeding as seed_module

    properties = {name: "x" for name in seed_module.PROPERTIES} | {"NamespaceId": "1", "BuildRepoName": "b"}
    topic = "arn:aws:sns:us-east-1:123456789012:abalone-alerts"
    with_topic = seed_module.SeedRequest.from_properties(properties | {"AlertTopicArn": topic})
    without = seed_module.SeedRequest.from_properties(properties)

    assert {v.key: v.value for v in with_topic.deploy_variables()}["ALERT_TOPIC_ARN"] == topic
    assert "ALERT_TOPIC_ARN" not in {v.key for v in without.deploy_variables()}
    assert "ALERT_TOPIC_ARN" not in {v.key for v in with_topic.build_variables()}
