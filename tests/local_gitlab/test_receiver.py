"""The local GitLab answers the trigger call and the pipeline API as GitLab does, for python-gitlab and curl."""

from __future__ import annotations

import gitlab
import requests

from local_gitlab import pipelines
from local_gitlab.receiver import GitLabReceiver


def test_the_trigger_answers_like_gitlab():
    with GitLabReceiver(project_id=3, trigger_token="glptt-right") as receiver:
        url = f"{receiver.url}/api/v4/projects/3/trigger/pipeline"
        curl_style = requests.post(url, data={"token": "glptt-right", "ref": "main", "variables[A]": "1"}, timeout=5)
        wrong_token = requests.post(url, json={"token": "glptt-wrong", "ref": "main"}, timeout=5)
        wrong_ref = requests.post(url, json={"token": "glptt-right", "ref": "dev"}, timeout=5)
        wrong_project = requests.post(
            url.replace("/3/", "/4/"), json={"token": "glptt-right", "ref": "main"}, timeout=5
        )
        other_route = requests.post(f"{receiver.url}/api/v4/projects", json={}, timeout=5)
        receiver.wait(timeout=10)

    assert curl_style.status_code == 201 and curl_style.json()["status"] == "created"
    assert [p.variables for p in receiver.pipelines] == [{"A": "1"}]
    assert (wrong_token.status_code, wrong_ref.status_code, wrong_project.status_code) == (404, 400, 404)
    assert other_route.status_code == 404 and "no route POST /api/v4/projects" in other_route.json()["message"]


def test_python_gitlab_triggers_follows_and_plays_a_manual_job():
    played = []

    def run(pipeline):
        return [
            {"name": "build", "stage": "build", "status": "success", "duration": 1.0},
            {"name": "production-deploy", "stage": "production-deploy", "status": "manual", "duration": 0.0},
        ]

    def play(pipeline, job):
        played.append((pipeline.variables["MODEL_PACKAGE_ARN"], job))
        return [{"name": job, "status": "success", "duration": 2.0}]

    with GitLabReceiver(on_pipeline=run, on_play=play, project_id=2, trigger_token="glptt-t") as receiver:
        project = gitlab.Gitlab(receiver.url).projects.get(2, lazy=True)
        triggered = project.trigger_pipeline("main", "glptt-t", variables={"MODEL_PACKAGE_ARN": "arn:1"})
        found = pipelines.wait_for_trigger(receiver.url, 2, {"MODEL_PACKAGE_ARN": "arn:1"}, timeout=10)
        waiting = pipelines.wait_until_settled(receiver.url, 2, found.id, timeout=10)
        finished = pipelines.play(receiver.url, 2, found.id, "production-deploy", timeout=10)

    assert found.id == triggered.id
    assert [(job["name"], job["status"]) for job in waiting] == [("build", "success"), ("production-deploy", "manual")]
    assert receiver.pipelines[0].status == "success"
    assert [(job["name"], job["status"]) for job in finished] == [
        ("build", "success"),
        ("production-deploy", "success"),
    ]
    assert played == [("arn:1", "production-deploy")]


def test_a_failing_pipeline_is_failed_with_its_reason_and_a_finished_job_cannot_be_played():
    def broken(_pipeline):
        raise RuntimeError("staging endpoint never became InService")

    with GitLabReceiver(on_pipeline=broken, on_play=lambda p, j: [], project_id=2, trigger_token="glptt-t") as receiver:
        requests.post(
            f"{receiver.url}/api/v4/projects/2/trigger/pipeline", json={"token": "glptt-t", "ref": "main"}, timeout=5
        )
        (pipeline,) = receiver.wait(timeout=10)
        status, answer = receiver.play("2", 999)

    assert pipeline.status == "failed" and "never became InService" in pipeline.error
    assert status == 404 and "Job Not Found" in answer["message"]


def test_a_second_project_has_its_own_token_callback_and_pipelines():
    ran = []
    with GitLabReceiver(
        on_pipeline=lambda p: ran.append(("deploy", p.id)) or [], project_id=2, trigger_token="glptt-d"
    ) as receiver:
        receiver.add_project(
            1, "local/model-build", on_pipeline=lambda p: ran.append(("build", p.id)) or [], trigger_token="glptt-b"
        )
        client = gitlab.Gitlab(receiver.url, timeout=5)
        build = client.projects.get(1, lazy=True).trigger_pipeline(ref="main", token="glptt-b", variables={"X": "1"})
        # Each token opens its own project only.
        crossed = requests.post(
            f"{receiver.url}/api/v4/projects/1/trigger/pipeline", json={"token": "glptt-d", "ref": "main"}, timeout=5
        )
        by_path = requests.post(
            f"{receiver.url}/api/v4/projects/local%2Fmodel-build/trigger/pipeline",
            json={"token": "glptt-b", "ref": "main"},
            timeout=5,
        )
        receiver.wait(timeout=10)
        listed = {
            project: [
                p["id"] for p in requests.get(f"{receiver.url}/api/v4/projects/{project}/pipelines", timeout=5).json()
            ]
            for project in (1, 2)
        }

    assert crossed.status_code == 404 and by_path.status_code == 201
    assert ran == [("build", build.id), ("build", by_path.json()["id"])]
    assert build.web_url.endswith(f"/local/model-build/-/pipelines/{build.id}")
    assert listed == {1: [by_path.json()["id"], build.id], 2: []}
