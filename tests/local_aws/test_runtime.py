"""The local SageMaker runtime answers InvokeEndpoint with the real model of the endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError

from local_aws.sagemaker_runtime.bench import measure

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def model(abalone, train):
    features, rings = abalone
    return train(features[:3000], rings[:3000])


@pytest.fixture(scope="module")
def endpoint(deploy, model):
    return deploy("runtime-native", model)


@pytest.fixture(scope="module")
def held_out(abalone):
    features, _ = abalone
    return features[3000:3060]


def expected(booster, rows: np.ndarray) -> np.ndarray:
    import xgboost

    return booster.predict(xgboost.DMatrix(rows))


def invoke(clients, endpoint_name: str, body: bytes, content_type: str = "text/csv") -> dict:
    return clients.runtime.invoke_endpoint(
        EndpointName=endpoint_name, ContentType=content_type, Accept="text/csv", Body=body
    )


def csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(value)) for value in row) for row in rows).encode()


def predictions(answer: dict) -> np.ndarray:
    text = answer["Body"].read().decode()
    return np.array([float(line) for line in text.splitlines()], dtype=np.float32)


def test_batch_predictions_equal_the_models_own(clients, endpoint, model, held_out):
    answer = invoke(clients, endpoint, csv(held_out))

    assert answer["ContentType"] == "text/csv"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    np.testing.assert_array_equal(predictions(answer), expected(model, held_out))


def test_single_row_predictions_equal_the_models_own(clients, endpoint, model, held_out):
    for row in held_out[:5]:
        answer = invoke(clients, endpoint, csv(row[None, :]))
        np.testing.assert_array_equal(predictions(answer), expected(model, row[None, :]))


def test_pickled_model_behind_a_plain_model_data_url(clients, deploy, abalone, train, held_out):
    # Older XGBoost containers pickle the Booster; the model here names its ModelDataUrl directly.
    features, rings = abalone
    booster = train(features[:2000], rings[:2000], rounds=12, depth=3)
    name = deploy("runtime-pickled", booster, pickled=True, via_package=False)

    np.testing.assert_array_equal(predictions(invoke(clients, name, csv(held_out))), expected(booster, held_out))


def test_a_new_artifact_at_the_same_url_is_served_after_the_change(
    clients, deploy, upload_model, abalone, train, held_out, local_stack
):
    features, rings = abalone
    first = train(features[:1500], rings[:1500], rounds=5, depth=2)
    second = train(features[1500:3000], rings[1500:3000], rounds=40, depth=6)
    name = deploy("runtime-reload", first)
    before = predictions(invoke(clients, name, csv(held_out)))
    assert predictions(invoke(clients, name, csv(held_out))).tolist() == before.tolist()

    upload_model("runtime-reload", second)  # same URL, new object: a new ETag
    after = predictions(invoke(clients, name, csv(held_out)))

    np.testing.assert_array_equal(before, expected(first, held_out))
    np.testing.assert_array_equal(after, expected(second, held_out))
    # Two artifacts (two ETags) for one URL: loaded exactly twice over four requests.
    url = "s3://sagemaker-local-artifacts/tests/runtime-reload/model.tar.gz"
    log = Path(local_stack.env["LOCAL_STACK_STATE_DIR"], "logs", "server.log").read_text()
    assert log.count(f"loading model {url} ") == 2


@pytest.mark.parametrize(
    ("body", "content_type", "original_status", "says"),
    [
        (b"0.5,0.4,0.1,0.5,0.2,0.1,0.15,abc,0,1", "text/csv", 400, "row 1, column 8: 'abc' is not a number"),
        (
            b"length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,sex_F,sex_I,sex_M\n"
            b"0.5,0.4,0.1,0.5,0.2,0.1,0.15,0,0,1",
            "text/csv",
            400,
            "is not a number",
        ),
        (
            b"0.5,0.4,0.1,0.5,0.2,0.1,0.15,0,0",
            "text/csv",
            400,
            "the model takes 10 features per row, the payload has 9",
        ),
        (b"9,0.5,0.4,0.1,0.5,0.2,0.1,0.15,0,0,1", "text/csv", 400, "the payload has 11: send feature columns only"),
        (b"", "text/csv", 400, "empty payload"),
        (b"\n \n", "text/csv", 400, "empty payload"),
        (b"\xff\xfe0.5", "text/csv", 400, "not UTF-8"),
        (b'{"instances": [[0.5, 0.4]]}', "application/json", 415, "content type application/json is not supported"),
    ],
    ids=[
        "non-numeric",
        "header-row",
        "too-few-features",
        "label-column-left-in",
        "empty",
        "blank-lines",
        "not-utf8",
        "json",
    ],
)
def test_malformed_payloads_get_a_model_error(clients, endpoint, body, content_type, original_status, says):
    with pytest.raises(ClientError) as raised:
        invoke(clients, endpoint, body, content_type)

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["Error"]["Code"] == "ModelError"
    assert says in error["Error"]["Message"]
    assert error["OriginalStatusCode"] == original_status


def test_unknown_endpoint_is_a_validation_error(clients):
    with pytest.raises(ClientError) as raised:
        invoke(clients, "no-such-endpoint", b"1,2,3")

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    assert error["Error"]["Message"] == f"Endpoint no-such-endpoint of account {ACCOUNT} not found."


def test_endpoint_whose_model_data_is_missing_names_it(clients):
    clients.sagemaker.create_model(
        ModelName="runtime-missing-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/local-stack-tests",
        PrimaryContainer={"Image": "xgboost", "ModelDataUrl": "s3://sagemaker-local-artifacts/nowhere/model.tar.gz"},
    )
    clients.sagemaker.create_endpoint_config(
        EndpointConfigName="runtime-missing-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "runtime-missing-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    clients.sagemaker.create_endpoint(EndpointName="runtime-missing", EndpointConfigName="runtime-missing-config")

    with pytest.raises(ClientError) as raised:
        invoke(clients, "runtime-missing", b"1,2,3,4,5,6,7,8,9,10")

    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert (
        "s3://sagemaker-local-artifacts/nowhere/model.tar.gz does not exist"
        in raised.value.response["Error"]["Message"]
    )


def test_bench_reports_latency_and_throughput(clients, endpoint, held_out):
    figures = measure(endpoint, held_out.tolist(), requests=40, batch_requests=10, warmup=3, client=clients.runtime)

    json.dumps(figures)  # plain data, for `make bench` to print or store
    for name, rows in (("single_row", 1), ("batch_100_rows", 100)):
        result = figures[name]
        assert 0 < result["p50_ms"] <= result["p99_ms"]
        assert result["rows_per_second"] == pytest.approx(result["requests_per_second"] * rows, rel=0.01)


def test_a_payload_over_6_mb_is_refused_with_413_as_aws_does(clients, endpoint, held_out):
    row = csv(held_out[:1]) + b"\n"
    limit = 6 * 1024 * 1024  # botocore's BodyBlob max for InvokeEndpoint
    at_limit = row * (limit // len(row))
    at_limit += b"\n" * (limit - len(at_limit))  # blank lines are skipped: exactly 6 MB of valid rows
    assert len(at_limit) == limit
    assert len(predictions(invoke(clients, endpoint, at_limit))) == limit // len(row)

    with pytest.raises(ClientError) as raised:
        invoke(clients, endpoint, at_limit + b"\n")  # one byte over

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"] == {"Code": "413", "Message": "HTTP content length exceeded 6291456 bytes."}
