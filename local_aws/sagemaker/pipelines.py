"""CreatePipeline and UpdatePipeline with AWS semantics; moto stores the pipeline.

moto turns a PipelineDefinitionS3Location into a Python dict and later answers its repr as the
definition (not JSON: the executor could not start it), and it ignores ClientRequestToken. Here the
definition is read from S3 and checked to be JSON, as SageMaker does, and sent to moto inline;
a repeated token answers the first ARN.
"""

from __future__ import annotations

import json

from local_aws.core import api
from local_aws.sagemaker import idempotency


def create_pipeline(request: dict, context: api.Context) -> dict:
    def create() -> dict:
        complete = _inline_definition(request, context)
        complete.pop("ClientRequestToken", None)
        answer = context.client("sagemaker").create_pipeline(**complete)
        return {"PipelineArn": answer["PipelineArn"]}

    return idempotency.once(
        context.state_dir, context.account_id, "CreatePipeline", request.get("ClientRequestToken"), create
    )


def update_pipeline(request: dict, context: api.Context) -> dict:
    answer = context.client("sagemaker").update_pipeline(**_inline_definition(request, context))
    return {"PipelineArn": answer["PipelineArn"]}


def _inline_definition(request: dict, context: api.Context) -> dict:
    complete = dict(request)
    location = complete.get("PipelineDefinitionS3Location")
    if location and complete.get("PipelineDefinition"):
        raise api.LocalApiError(
            "ValidationException", "Both PipelineDefinition and PipelineDefinitionS3Location shouldn't be present"
        )
    if location:
        arguments = {"Bucket": location["Bucket"], "Key": location["ObjectKey"]}
        if location.get("VersionId"):
            arguments["VersionId"] = location["VersionId"]
        try:
            text = context.client("s3").get_object(**arguments)["Body"].read().decode("utf-8")
        except Exception as error:  # noqa: BLE001 - any failure to read it is the caller's bad location
            raise api.LocalApiError(
                "ValidationException",
                f"Unable to read the pipeline definition at s3://{location['Bucket']}/{location['ObjectKey']}: {error}",
            ) from None
        complete.pop("PipelineDefinitionS3Location")
        complete["PipelineDefinition"] = text
    if complete.get("PipelineDefinition") is not None:
        try:
            json.loads(complete["PipelineDefinition"])
        except ValueError as error:
            raise api.LocalApiError(
                "ValidationException", f"The pipeline definition is not valid JSON: {error}"
            ) from None
    return complete


OPERATIONS: dict[str, api.Handler] = {"CreatePipeline": create_pipeline, "UpdatePipeline": update_pipeline}
