"""Processing inputs and outputs of the batch and model-quality pipelines, one way for both: every output goes to
<root>/executions/<execution id>/<step>/<name>, uploaded at the end of the job (imports the SageMaker SDK)."""

from __future__ import annotations

from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join


def execution_path(root: str, *parts: str) -> Join:
    return Join(on="/", values=[root, "executions", ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])


def output(root: str, step: str, name: str) -> ProcessingOutput:
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=execution_path(root, step, name), local_path=f"/opt/ml/processing/{name}", s3_upload_mode="EndOfJob"
        ),
    )


def s3_input(name: str, uri, local_path: str) -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"),
    )
