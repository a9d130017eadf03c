"""The SageMaker API operations the local stack answers itself (everything else goes to moto unchanged).

One table, operation name -> handler, in the wire format of `local_aws.core.api`: the pipeline-execution
operations of the executor (moto stores pipelines but runs nothing) and the registry's UpdateModelPackage
(moto erases left-out fields and sends no event). A new emulated operation is added here.
"""

from __future__ import annotations

from local_aws.core import api
from local_aws.sagemaker import registry
from local_aws.sagemaker.executor import handlers as pipeline_executions

OPERATIONS: dict[str, api.Handler] = {
    **pipeline_executions.OPERATIONS,
    "UpdateModelPackage": registry.update_model_package,
}


def register() -> None:
    for operation, handler in OPERATIONS.items():
        api.register(operation, handler)
