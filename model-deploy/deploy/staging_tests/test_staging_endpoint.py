"""The staging gate: the endpoint serves the approved package, predicts as well as it scored when it
was registered, answers fast enough, and turns bad input into an error answer without falling over."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy import inference

MALFORMED_PAYLOAD = b"length,diameter,height\nnot-a-number,,\n"


def test_endpoint_is_in_service(staging):
    served = staging.served()
    assert served.status == "InService", f"endpoint {staging.endpoint_name} is {served.status}, not InService"


def test_endpoint_serves_the_approved_package(staging):
    served = staging.served()
    assert served.package_arns == [staging.package_arn], (
        f"endpoint {staging.endpoint_name} serves {served.package_arns}, not the approved {staging.package_arn}: "
        "another deploy ran in between, or the stack points elsewhere"
    )


def test_rmse_on_held_out_test_split_within_tolerance(staging, figures):
    rows = staging.held_out_rows
    predictions = inference.predict_all(staging.runtime, staging.endpoint_name, rows, staging.batch_rows)
    rmse = inference.rmse([row.label for row in rows], predictions)
    registered = staging.registered_rmse
    figures.update(
        test_rows=len(rows),
        rmse=round(rmse, 4),
        registered_rmse=round(registered, 4),
        rmse_limit=round(registered + staging.rmse_tolerance, 4),
    )
    assert rmse <= registered + staging.rmse_tolerance, (
        f"RMSE {rmse:.3f} on {len(rows)} held-out rows is above the registered {registered:.3f} "
        f"+ tolerance {staging.rmse_tolerance}: the endpoint does not reproduce the approved model"
    )


def test_latency_p95_within_budget(staging, figures):
    rows = staging.held_out_rows
    latencies = inference.single_row_latencies_ms(
        staging.runtime, staging.endpoint_name, rows, staging.latency_requests
    )
    p95 = inference.percentile(latencies, 0.95)
    figures.update(
        latency_requests=len(latencies),
        latency_p50_ms=round(inference.percentile(latencies, 0.50), 1),
        latency_p95_ms=round(p95, 1),
        latency_max_ms=round(max(latencies), 1),
        latency_p95_budget_ms=staging.latency_budget_ms,
    )
    assert p95 <= staging.latency_budget_ms, (
        f"p95 latency {p95:.1f} ms over {len(latencies)} one-row requests exceeds the budget "
        f"{staging.latency_budget_ms} ms"
    )


def test_malformed_payload_gets_an_error_answer(staging, figures):
    try:
        response = staging.runtime.invoke_endpoint(
            EndpointName=staging.endpoint_name, ContentType=inference.CONTENT_TYPE, Body=MALFORMED_PAYLOAD
        )
    except ClientError as error:
        answer = error.response
        figures.update(
            malformed_error_code=answer["Error"].get("Code", ""),
            malformed_http_status=answer["ResponseMetadata"].get("HTTPStatusCode"),
        )
    except BotoCoreError as error:  # no answer at all: a crash or a hang, not an error answer
        raise AssertionError(f"malformed payload got no answer from {staging.endpoint_name}: {error}") from None
    else:
        body = response["Body"].read()[:200]
        raise AssertionError(f"malformed payload was answered as if valid: {body!r}")
    # Still alive: a valid request right after is answered, and the endpoint stays InService.
    row = staging.held_out_rows[0]
    assert len(inference.invoke_csv(staging.runtime, staging.endpoint_name, [row.features])) == 1
    assert staging.served().status == "InService"
