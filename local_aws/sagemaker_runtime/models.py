"""The local SageMaker runtime: InvokeEndpoint answered with the endpoint's real model.

For `POST /endpoints/<name>/invocations` the endpoint is traced as SageMaker does:
endpoint -> endpoint config (first production variant, or the requested TargetVariant) -> model
-> container (-> model package, when the container names one) -> ModelDataUrl -> model.tar.gz in
S3 -> `xgboost-model`, loaded as the built-in XGBoost container does (pickle first, then XGBoost's
own format). Loaded models are cached by model data URL and S3 ETag, so a changed artifact is
reloaded and an unchanged one costs nothing.

Accounts, as on AWS: the endpoint, its config and model are the caller's account's; a model package is read
in the account its ARN names (prod's model names the tooling account's package); the model data is read
from its bucket, wherever that bucket's account is (moto finds another account's bucket by its name).

moto runs in this same process, so the trace reads moto's backends directly: five HTTP round
trips per request would cost more than the prediction itself (target: p50 < 5 ms a row).

Errors follow the sagemaker-runtime protocol: an unknown endpoint is a 400 ValidationError
("Endpoint X of account Y not found."); a payload the model cannot take is a 424 ModelError whose
OriginalStatusCode is what the XGBoost container answers (400 bad rows, 415 content type,
406 accept type).
"""

from __future__ import annotations

import io
import json
import logging
import math
import pickle
import tarfile
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_FILE = "xgboost-model"
CSV = "text/csv"
LIBSVM = "text/libsvm"  # the built-in XGBoost container's other input format


class InvokeError(Exception):
    """An InvokeEndpoint error answer in the sagemaker-runtime format."""

    def __init__(self, code: str, message: str, status: int, original_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.original_status = original_status

    def body(self) -> bytes:
        document: dict[str, Any] = {"ErrorCode": self.code, "Message": self.message}
        if self.original_status is not None:
            document["OriginalStatusCode"] = self.original_status
            document["OriginalMessage"] = self.message
        return json.dumps(document).encode()


def validation_error(message: str) -> InvokeError:
    return InvokeError("ValidationError", message, 400)


def model_error(original_status: int, message: str) -> InvokeError:
    # AWS wraps what the model container answered: "Received client error (400) from primary ..."
    kind = "client" if original_status < 500 else "server"
    return InvokeError(
        "ModelError",
        f'Received {kind} error ({original_status}) from primary with message "{message}".',
        424,
        original_status,
    )


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str
    variant: str


class Predictor:
    """One loaded XGBoost model."""

    def __init__(self, booster):
        # One thread a prediction: requests already run in parallel, one per gateway thread, and
        # OpenMP's pool costs more than it saves on small payloads (16 ms instead of 0.3 ms for
        # one row on a busy 2-core machine, measured).
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.num_features = booster.num_features()

    def predict(self, rows: np.ndarray) -> np.ndarray:
        try:
            return self.booster.inplace_predict(rows)
        except Exception:  # noqa: BLE001 - some boosters (gblinear) have no inplace path
            import xgboost

            return self.booster.predict(xgboost.DMatrix(rows))


def load_predictor(model_tar_gz: bytes, source: str) -> Predictor:
    """Load `xgboost-model` from a model.tar.gz the way the SageMaker XGBoost container does."""
    import xgboost

    try:
        with tarfile.open(fileobj=io.BytesIO(model_tar_gz), mode="r:gz") as archive:
            members = {member.name.removeprefix("./"): member for member in archive.getmembers() if member.isfile()}
            if MODEL_FILE not in members:
                raise model_error(500, f"{source} holds {sorted(members) or 'no files'}, not {MODEL_FILE}")
            raw = archive.extractfile(members[MODEL_FILE]).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise model_error(500, f"{source} is not a readable model.tar.gz: {error}") from error
    try:
        # Older XGBoost containers saved a pickled Booster; our own bucket is the only source here.
        model = pickle.loads(raw)  # noqa: S301
    except Exception:  # noqa: BLE001 - not a pickle: XGBoost's own format, tried next
        model = xgboost.Booster()
        try:
            model.load_model(bytearray(raw))
        except xgboost.core.XGBoostError:
            model = _load_with_image_xgboost(raw, source)
    if hasattr(model, "get_booster"):  # an sklearn-style XGBRegressor
        model = model.get_booster()
    if not isinstance(model, xgboost.Booster):
        raise model_error(500, f"{MODEL_FILE} in {source} holds a {type(model).__name__}, not an XGBoost Booster")
    return Predictor(model)


def _load_with_image_xgboost(raw: bytes, source: str):
    """A model in a format today's xgboost dropped (XGBoost images before 2.x): read by its image's xgboost."""
    import xgboost

    from local_aws.sagemaker.executor import images

    try:
        converted = images.xgboost_model_as_json(raw)
    except images.ImageError as error:
        raise model_error(500, f"{MODEL_FILE} in {source} is neither a pickle nor an XGBoost model: {error}") from None
    model = xgboost.Booster()
    model.load_model(bytearray(converted))
    return model


def _payload_lines(body: bytes, what_to_send: str) -> list[str]:
    """The payload's non-empty lines; an unreadable or empty payload is the container's 400."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise model_error(400, f"payload is not UTF-8 text ({error})") from error
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise model_error(400, f"empty payload: {what_to_send}")
    return lines


def parse_csv(body: bytes, num_features: int) -> np.ndarray:
    """CSV rows (no header, no label) -> float32 matrix; empty fields are missing values (NaN)."""
    lines = _payload_lines(body, f"send one or more CSV rows of {num_features} numbers, no header")
    try:
        rows = np.array([line.split(",") for line in lines], dtype=np.float32)  # fast path
    except ValueError:
        rows = np.array([_parse_row(line, number, num_features) for number, line in enumerate(lines, 1)])
    if rows.ndim != 2 or rows.shape[1] != num_features:
        counts = sorted({len(line.split(",")) for line in lines})
        raise model_error(
            400,
            f"the model takes {num_features} features per row, the payload has {' or '.join(map(str, counts))}: "
            "send feature columns only (no label column, no header)",
        )
    return rows


def parse_libsvm(body: bytes, num_features: int) -> np.ndarray:
    """LIBSVM rows ("[label] index:value ..."), as XGBoost's parser reads them: an index is the column
    number, a leading token without ":" is a label (ignored at inference), a left-out column is missing."""
    lines = _payload_lines(body, "send one or more LIBSVM rows (index:value pairs)")
    rows = np.full((len(lines), num_features), np.nan, dtype=np.float32)
    for number, line in enumerate(lines, 1):
        tokens = line.split()
        if tokens and ":" not in tokens[0]:
            tokens = tokens[1:]
        for token in tokens:
            index, _, value = token.partition(":")
            try:
                column, number_value = int(index), float(value)
            except ValueError:
                raise model_error(400, f"row {number}: {token[:40]!r} is not index:value") from None
            if not 0 <= column < num_features:
                raise model_error(400, f"row {number}: feature index {column} is outside 0..{num_features - 1}")
            rows[number - 1, column] = number_value
    return rows


def _parse_row(line: str, number: int, num_features: int) -> list[float]:
    values = []
    for column, field in enumerate(line.split(","), 1):
        field = field.strip()
        if not field:
            values.append(math.nan)
            continue
        try:
            values.append(float(field))
        except ValueError:
            raise model_error(
                400, f"row {number}, column {column}: {field[:40]!r} is not a number (CSV rows of numbers, no header)"
            ) from None
    if len(values) != num_features:
        raise model_error(400, f"row {number} has {len(values)} values; the model takes {num_features} features")
    return values


def format_csv(predictions: np.ndarray) -> bytes:
    # str(float(x)): the float32's exact value as a double ("9.699999809265137", not "9.7"), so a
    # client that parses doubles gets exactly what the model computed.
    return "\n".join(str(float(value)) for value in np.ravel(predictions)).encode()


class SageMakerRuntime:
    """InvokeEndpoint against the endpoints, models and S3 objects of the in-process moto server."""

    def __init__(self, account_id: str):
        self.account_id = account_id  # the stack's: a caller that names no account
        self._models: dict[str, tuple[str, Predictor]] = {}  # model data URL -> (ETag, model)
        self._load_lock = threading.Lock()
        self.capture = None  # a capture.DataCapture, set by the gateway: the endpoint configs' data capture

    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        region: str,
        target_variant: str | None = None,
        inference_id: str | None = None,
        account_id: str | None = None,
    ) -> Invocation:
        account_id = account_id or self.account_id
        variant, model_data_url = self.resolve(endpoint_name, region, target_variant, account_id)
        predictor = self.predictor(model_data_url, region, account_id)
        parse = {CSV: parse_csv, LIBSVM: parse_libsvm}.get(_media_type(content_type))
        if parse is None:
            raise model_error(415, f"content type {content_type or '(none)'} is not supported: send {CSV} or {LIBSVM}")
        if _media_type(accept) not in ("", "*/*", CSV):
            raise model_error(406, f"accept type {accept} is not supported: ask for {CSV}")
        rows = parse(body, predictor.num_features)
        invocation = Invocation(format_csv(predictor.predict(rows)), CSV, variant)
        if self.capture is not None:
            config = self.data_capture_config(endpoint_name, region)
            self.capture.record(
                config, endpoint_name, variant, (body, content_type), (invocation.body, CSV), inference_id
            )
        return invocation

    def data_capture_config(self, endpoint_name: str, region: str) -> dict | None:
        """The DataCaptureConfig of the endpoint's current config (None without one)."""
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self.account_id][region]
        endpoint = backend.endpoints.get(endpoint_name)
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name) if endpoint else None
        return (config.data_capture_config or None) if config else None

    def resolve(
        self, endpoint_name: str, region: str, target_variant: str | None = None, account_id: str | None = None
    ) -> tuple[str, str]:
        """Endpoint name -> (production variant name, S3 URL of its model.tar.gz)."""
        from moto.sagemaker.models import sagemaker_backends

        account_id = account_id or self.account_id
        backend = sagemaker_backends[account_id][region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            raise validation_error(f"Endpoint {endpoint_name} of account {account_id} not found.")
        if endpoint.endpoint_status not in ("InService", "Updating"):
            raise validation_error(f"Endpoint {endpoint_name} is not in service (status {endpoint.endpoint_status}).")
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        if config is None:
            raise validation_error(
                f"Endpoint {endpoint_name} uses endpoint config {endpoint.endpoint_config_name}, which does not exist."
            )
        variants = config.production_variants or []
        if target_variant:
            variants = [variant for variant in variants if variant.get("VariantName") == target_variant]
            if not variants:
                raise validation_error(f"Endpoint {endpoint_name} has no production variant {target_variant}.")
        if not variants:
            raise validation_error(f"Endpoint config {config.endpoint_config_name} has no production variant.")
        variant = variants[0]
        try:
            model = backend.describe_model(variant.get("ModelName"))
        except Exception:  # noqa: BLE001 - moto's ValidationError: reported as the container would fail
            raise model_error(
                500, f"model {variant.get('ModelName')} of endpoint {endpoint_name} does not exist"
            ) from None
        container = model.primary_container or (model.containers[0] if model.containers else {})
        return variant["VariantName"], self._model_data_url(backend, container, model.model_name)

    def predictor(self, model_data_url: str, region: str, account_id: str | None = None) -> Predictor:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
        try:
            backend = s3_backends[account_id or self.account_id][get_partition(region)]
            s3_object = backend.get_object(bucket, key)
        except Exception:  # noqa: BLE001 - moto raises its own MissingBucket; reported below
            s3_object = None
        if s3_object is None:
            raise model_error(500, f"model data {model_data_url} does not exist in the local S3")
        cached = self._models.get(model_data_url)
        if cached is not None and cached[0] == s3_object.etag:
            return cached[1]
        with self._load_lock:  # one load per artifact, however many requests wait for it
            cached = self._models.get(model_data_url)
            if cached is None or cached[0] != s3_object.etag:
                log.info("loading model %s (ETag %s)", model_data_url, s3_object.etag)
                cached = (s3_object.etag, load_predictor(s3_object.value, model_data_url))
                self._models[model_data_url] = cached
        return cached[1]

    def _model_data_url(self, backend, container: dict[str, Any], model_name: str) -> str:
        if container.get("ModelDataUrl"):
            return container["ModelDataUrl"]
        package_name = container.get("ModelPackageName")
        if package_name:
            try:
                package = _package_backend(backend, package_name).describe_model_package(package_name)
            except Exception as error:  # noqa: BLE001 - moto's ValidationError, reported to the caller
                raise model_error(500, f"model {model_name} uses model package {package_name}: {error}") from None
            containers = (package.inference_specification or {}).get("Containers") or [{}]
            if containers[0].get("ModelDataUrl"):
                return containers[0]["ModelDataUrl"]
            raise model_error(500, f"model package {package_name} has no ModelDataUrl in its InferenceSpecification")
        raise model_error(500, f"model {model_name} has neither ModelDataUrl nor ModelPackageName in its container")


def _package_backend(backend, package_name: str):
    """The registry a package lives in: the account and region its ARN names (a tooling account's package
    serves a prod endpoint), the model's own for a bare name."""
    from moto.sagemaker.models import sagemaker_backends

    parts = package_name.split(":")
    if len(parts) > 5 and parts[0] == "arn" and (parts[4], parts[3]) != (backend.account_id, backend.region_name):
        return sagemaker_backends[parts[4]][parts[3]]
    return backend


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()
