"""The SageMaker API operations the local stack answers itself (everything else goes to moto unchanged).

One table, operation name -> handler, in the wire format of `local_aws.core.api`: the pipeline-execution
operations of the executor (moto stores pipelines but runs nothing), the jobs its steps ran, the
pipeline and registry operations whose moto semantics differ from AWS's, and DescribeEndpoint. A new
emulated operation is added here.

Every request is first checked against the operation's input shape in botocore's service model
(`shapes.validate_request`), as AWS checks it: a malformed ARN or an out-of-range number is AWS's
ValidationException before a handler sees it, never a handler's 500.
"""

from __future__ import annotations

import functools

from local_aws.core import api
from local_aws.sagemaker import endpoints, jobs, pipelines, registry, shapes
from local_aws.sagemaker.executor import handlers as pipeline_executions

OPERATIONS: dict[str, api.Handler] = {
    **pipeline_executions.OPERATIONS,
    **jobs.OPERATIONS,
    **pipelines.OPERATIONS,
    **endpoints.OPERATIONS,
    "CreateModelPackage": registry.create_model_package,
    "UpdateModelPackage": registry.update_model_package,
}


def validated(operation: str, handler: api.Handler) -> api.Handler:
    @functools.wraps(handler)
    def checked(request: dict, context: api.Context) -> dict:
        shapes.validate_request(operation, request)
        return handler(request, context)

    return checked


def register() -> None:
    for operation, handler in OPERATIONS.items():
        api.register(operation, validated(operation, handler))
