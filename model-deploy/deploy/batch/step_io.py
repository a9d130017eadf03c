"""Processing jobs of the batch and model-quality pipelines, one way for both: the sklearn script processor, and
inputs and outputs, every output at <root>/executions/<execution id>/<step>/<name>, uploaded at the end of the job
(imports the SageMaker SDK)."""

from __future__ import annotations

from sagemaker.core import image_uris
from sagemaker.core.processing import ScriptProcessor
from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join

SKLEARN_IMAGE_VERSION = "1.2-1"  # the image the build's Preprocess ran on: the feature code runs on it again


def sklearn_processor(region: str, role_arn: str, session, instance_type, base_job_name: str) -> ScriptProcessor:
    return ScriptProcessor(
        image_uri=image_uris.retrieve(
            framework="sklearn",
            region=region,
            version=SKLEARN_IMAGE_VERSION,
            py_version="py3",
            instance_type="ml.m5.xlarge",
        ),
        command=["python3"],
        instance_type=instance_type,
        instance_count=1,
        base_job_name=base_job_name,
        sagemaker_session=session,
        role=role_arn,
    )


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
