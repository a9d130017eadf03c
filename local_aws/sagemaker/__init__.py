"""SageMaker on the local stack: the pipeline executor (`executor/`) and the model registry's semantics
(`registry`), answered behind SageMaker's own API (`responses`). Importing it registers the operations."""

from local_aws.sagemaker import responses

responses.register()


def recover(state_dir) -> list[str]:
    """At server start: executions whose server died are Failed, as AWS would never leave them running."""
    from local_aws.sagemaker.executor.store import ExecutionStore

    ended = ExecutionStore(state_dir).fail_interrupted("local stack restarted")
    return [f"pipeline execution {arn} was interrupted: Failed (local stack restarted)" for arn in ended]
