"""InvokeEndpoint on the wire: the request's headers and body in, the runtime's HTTP answer out.

The gateway routes `POST /endpoints/<name>/invocations` here; `models.SageMakerRuntime` traces the endpoint
to its model and predicts. Errors are answered as AWS does: JSON with `x-amzn-ErrorType`. A body over
6 MB never reaches a model on AWS: its front end answers 413 "HTTP content length exceeded <limit>
bytes." with no error type, which botocore reports as error code "413".
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping

from local_aws.sagemaker_runtime.models import InvokeError, SageMakerRuntime

log = logging.getLogger(__name__)
# botocore's sagemaker-runtime model: BodyBlob "max": 6291456; the InvokeEndpoint API reference: 6 MB.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def invoke_endpoint(
    runtime: SageMakerRuntime,
    endpoint_name: str,
    body: bytes,
    headers: Mapping[str, str],
    region: str,
    account_id: str | None = None,  # the caller's account (the gateway's); None: the stack's
) -> tuple[int, dict[str, str], bytes]:
    request_id = str(uuid.uuid4())
    if len(body) > MAX_PAYLOAD_BYTES:
        message = f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."
        log.info("InvokeEndpoint %s: 413 %s (%d bytes)", endpoint_name, message, len(body))
        answer = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
        return 413, answer, json.dumps({"message": message}).encode()
    try:
        result = runtime.invoke(
            endpoint_name,
            body,
            content_type=headers.get("Content-Type"),
            accept=headers.get("Accept"),
            region=region,
            target_variant=headers.get("X-Amzn-SageMaker-Target-Variant"),
            inference_id=headers.get("X-Amzn-SageMaker-Inference-Id"),
            account_id=account_id,
        )
    except InvokeError as error:
        log.info("InvokeEndpoint %s: %s %s", endpoint_name, error.code, error.message)
        answer = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code, "x-amzn-RequestId": request_id}
        return error.status, answer, error.body()
    answer = {
        "Content-Type": result.content_type,
        "x-Amzn-Invoked-Production-Variant": result.variant,
        "x-amzn-RequestId": request_id,
    }
    return 200, answer, result.body
