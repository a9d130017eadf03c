"""Batch inference pieces that need no stack: the retraining rule, drift distances, nDCG, the trigger template."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from deploy.batch import postprocess
from deploy.errors import DeployError

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "batch-schedule-template.yml"


def record(breach: bool, number: int, version: int = 1, retrain: bool = False) -> dict:
    return {
        "execution_id": f"e{number}",
        "time": f"2026-12-01T00:00:{number:02d}",
        "breach": breach,
        "model_package_arn": f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone/{version}",
        "retrain": retrain,
    }


@pytest.mark.parametrize(
    ("history", "retrain"),
    [
        ([True], False),  # one breach is not a trend
        ([True, False, True], True),  # 2 of the last 3
        ([True, True, False, False], False),  # the breaches left the window of 3
        ([False, True, False, True], True),
        ([True, True, True, True], True),
    ],
)
def test_retraining_rule_needs_n_breaches_in_the_last_m_runs(history, retrain):
    decision = postprocess.decide([record(b, i) for i, b in enumerate(history)], breaches=2, window=3)
    assert decision["retrain"] is retrain
    assert decision["runs_in_window"] == min(3, len(history))


def test_the_window_holds_only_the_scoring_versions_runs():
    # Version 1 drifted twice and was retrained; version 2's first drifted run is one breach, not three.
    earlier = [record(True, 0, version=1), record(True, 1, version=1, retrain=True)]
    decision = postprocess.decide([*earlier, record(True, 2, version=2)], breaches=2, window=3)
    assert decision["retrain"] is False
    assert decision["window_executions"] == ["e2"]


def test_after_a_retraining_request_the_window_starts_again():
    # One request per trend: the drifted run after the request does not ask again.
    earlier = [record(True, 0), record(True, 1, retrain=True)]
    assert postprocess.decide([*earlier, record(True, 2)], breaches=2, window=3)["retrain"] is False
    assert postprocess.decide([*earlier, record(True, 2), record(True, 3)], breaches=2, window=3)["retrain"] is True


def test_ndcg_is_one_for_the_same_ranking_and_drops_when_the_top_features_lose_their_rank():
    baseline = {"shell_weight": 2.0, "whole_weight": 1.0, "sex_I": 0.5, "length": 0.1}
    assert postprocess.ndcg(baseline, {k: v * 3 for k, v in baseline.items()}) == pytest.approx(1.0)
    swapped = {"shell_weight": 0.0, "whole_weight": 0.01, "sex_I": 0.5, "length": 0.3}
    assert postprocess.ndcg(baseline, swapped) < 0.9


def test_feature_distance_is_the_cdf_distance_at_the_baseline_buckets():
    buckets = [{"lower_bound": i, "upper_bound": i + 1, "count": 10.0} for i in range(10)]
    baseline = {"name": "x", "numerical_statistics": {"distribution": {"kll": {"buckets": buckets}}}}

    def current(values):
        sketch = {"buckets": [], "sketch": {"data": [values]}}
        return {"name": "x", "numerical_statistics": {"distribution": {"kll": sketch}}}

    same = current([i + 0.5 for i in range(10)])
    shifted = current([i + 5.5 for i in range(10)])
    assert postprocess.feature_distances({"features": [baseline]}, {"features": [same]}) == {"x": 0.0}
    assert postprocess.feature_distances({"features": [baseline]}, {"features": [shifted]})["x"] == pytest.approx(0.5)


def test_the_drift_report_draws_each_feature_baseline_against_batch_and_marks_the_drifted(tmp_path):
    buckets = [{"lower_bound": i, "upper_bound": i + 1, "count": 10.0} for i in range(10)]
    numeric = {"name": "weight", "numerical_statistics": {"distribution": {"kll": {"buckets": buckets}}}}
    sexes = [{"value": v, "count": 10.0} for v in "FIM"]
    categorical = {"name": "sex", "string_statistics": {"distribution": {"categorical": {"buckets": sexes}}}}
    batch_weight = {
        "name": "weight",
        "numerical_statistics": {"distribution": {"kll": {"sketch": {"data": [[9.5] * 20 + [0.5] * 5]}}}},
    }
    batch_sex = {
        "name": "sex",
        "string_statistics": {"distribution": {"categorical": {"buckets": [{"value": "M", "count": 3.0}]}}},
    }
    labels, expected, observed = postprocess.distributions(numeric, batch_weight)
    assert len(labels) == 10 and expected == [0.1] * 10
    assert observed[-1] == pytest.approx(0.8) and observed[0] == pytest.approx(0.2)  # the pile the shift made
    assert postprocess.distributions(categorical, batch_sex)[2] == [0.0, 0.0, 1.0]
    summary = {
        "project": "abalone",
        "stage": "prod",
        "execution_id": "e1",
        "execution_arn": "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e1",
        "model_package_arn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone/1",
        "input_data_url": "s3://b/in/",
        "rows": 25,
        "violation_count": 1,
        "attribution_ndcg": 0.7,
        "max_feature_distance": 0.7,
        "feature_distances": {"weight": 0.7, "sex": 0.05},
        "thresholds": {"distance": 0.2, "ndcg": 0.9},
        "checks": {
            "data_quality": {
                "violations": [{"feature_name": "weight", "constraint_check_type": "baseline_drift_check"}]
            },
            "feature_attribution": {"violations": []},
        },
        "decision": {"rule": "threshold broken in 2 of the last 3 runs", "broken_in_window": 1, "runs_in_window": 1},
    }
    baseline, batch = {"features": [numeric, categorical]}, {"features": [batch_weight, batch_sex]}
    png, page = postprocess.drift_report(baseline, batch, summary, tmp_path / "report")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = page.read_text()
    assert 'src="data:image/png;base64,' in text and "baseline_drift_check" in text
    assert text.index("<td>weight</td><td>0.700</td><td>drifted</td>") < text.index("<td>sex</td><td>0.050</td>")
    assert "no retraining" in text


def tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def test_trigger_template_passes_cfn_lint():
    run = subprocess.run([tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_schedule_and_s3_rule_start_exactly_the_stage_pipeline_with_least_privilege():
    template, errors = decode(str(TEMPLATE))
    assert not errors
    resources = template["Resources"]
    schedule = resources["Schedule"]["Properties"]
    assert schedule["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimezone"}
    names = [p["Name"] for p in schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]]
    assert "InputDataUrl" in names
    rule = resources["InputRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.s3"] and rule["EventPattern"]["detail-type"] == ["Object Created"]
    for role, service in (("SchedulerRole", "scheduler.amazonaws.com"), ("EventsRole", "events.amazonaws.com")):
        properties = resources[role]["Properties"]
        trust = properties["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"]["Service"] for s in trust] == [service]
        assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in trust)
        statements = [s for p in properties["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert [s["Action"] for s in statements] == ["sagemaker:StartPipelineExecution"]
        resource = json.dumps(statements[0]["Resource"])
        assert "pipeline/${PipelineName}" in resource and "*" not in resource
    for role in ("SchedulerRole", "EventsRole", "QualityEventsRole"):
        # The deploy roles may create these only under the stage's path and boundary (cloudformation/project.yml).
        assert resources[role]["Properties"]["PermissionsBoundary"] == {"Ref": "PermissionsBoundaryArn"}
        assert resources[role]["Properties"]["Path"] == {"Fn::Sub": "/sagemaker-${ProjectName}-batch-${StageName}/"}


def test_the_deploy_commands_load_no_sagemaker_sdk_until_a_batch_pipeline_is_upserted():
    # build, deploy-stage, staging-test, rollback and the batch triggers code stay on boto3: jobs start in seconds.
    probe = (
        "import sys, deploy.__main__, deploy.rollback, deploy.batch.promote, deploy.batch.schedule;"
        "import deploy.batch.staging;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sagemaker'))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_triggers_stack_takes_the_stage_settings_and_points_at_the_version():
    from deploy.batch import run, schedule
    from deploy.environment import Environment

    environment = Environment(
        region="eu-west-1",
        project_name="abalone",
        project_id="p-1",
        artifact_bucket="bucket",
        execution_role_arn="arn:aws:iam::210987654321:role/abalone-prod-model-execution",
    )
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone/4"
    values = schedule.parameters(environment, "prod", arn, run.stage_settings("prod"))
    # The trigger roles' boundary, in the account of the stage's model role (the deploy role requires it).
    assert values["PermissionsBoundaryArn"] == "arn:aws:iam::210987654321:policy/abalone-batch-prod-boundary"
    template, _ = decode(str(TEMPLATE))
    assert set(values) <= set(template["Parameters"])  # every value is one the template declares
    assert values["ModelPackageArn"] == arn and values["PipelineName"] == "abalone-batch-inference-prod"
    assert values["ScheduleState"] == "ENABLED" and values["InputRuleState"] == "ENABLED"
    assert values["InputPrefix"] == "batch-inference/abalone/prod/input/" and values["InputBucket"] == "bucket"
    assert values["RetrainBreaches"] == "2" and values["ScheduleExpression"] == "cron(0 2 * * ? *)"
    with pytest.raises(DeployError, match="ENABLED or DISABLED"):
        schedule.parameters(environment, "prod", arn, {"Schedule": {"State": "OFF"}})
    no_role = Environment(region="eu-west-1", project_name="abalone", artifact_bucket="bucket")
    with pytest.raises(DeployError, match="MODEL_EXECUTION_ROLE_ARN"):
        schedule.parameters(no_role, "prod", arn, {})


def test_the_staging_sample_spreads_over_the_training_data_and_keeps_its_header():
    import io

    from deploy.batch import staging
    from deploy.registry import ModelPackage

    class Bucket:  # the one call sample() makes: GetObject of the version's InputDataUrl
        def __init__(self, text: str):
            self.text = text

        def get_object(self, Bucket, Key):  # noqa: N803 - boto3's parameter names
            return {"Body": io.BytesIO(self.text.encode())}

    ordered = "sex,length,rings\n" + "".join(f"M,0.{index:03d},{index}\n" for index in range(1000))
    package = ModelPackage(
        arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone/1",
        group="abalone",
        version=1,
        approval_status="Approved",
        metadata={"InputDataUrl": "s3://bucket/data/abalone.csv"},
    )
    body, rows = staging.sample(Bucket(ordered), package, 200)
    lines = body.splitlines()
    labels = [int(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert rows == 200 and lines[0] == "sex,length,rings"
    assert labels == list(range(0, 1000, 5))  # every fifth row: the whole range, not its first fifth
    body, rows = staging.sample(Bucket(ordered), package, 5000)  # more asked than there are: every row
    assert rows == 1000 and body == ordered
    headerless = ordered.split("\n", 1)[1]
    assert staging.sample(Bucket(headerless), package, 2) == ("M,0.000,0\nM,0.500,500\n", 2)
