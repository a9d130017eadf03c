"""Model (CreateModel) and Transform (a batch transform job) steps.

A Model step creates a SageMaker Model from its request. Its name is derived from the request's content (the
image and model data), where SageMaker generates a fresh one per execution: the same trained model then has
the same name, so the Transform and ClarifyCheck steps that read `Steps.<model>.ModelName` can hit the step
cache when nothing changed (on AWS they run again).

A Transform step runs the model's own image environment in the sandbox (`images/batch_transform.py`):
each input object is split by line, filtered and joined as DataProcessing says, and written as
`<S3OutputPath>/<object key relative to the input prefix>.out`, one record a line.
"""

from __future__ import annotations

import hashlib
import json

from local_aws.sagemaker.executor import images, s3files, step_types

TRANSFORM_ENTRY_POINT = "/opt/local-aws/batch_transform.py"
MODEL_NAME_PREFIX = "pipelines-model-"


def run_model(arguments: dict, job: step_types.Job) -> step_types.Outcome:
    request = {key: value for key, value in arguments.items() if key != "ModelName"}
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{MODEL_NAME_PREFIX}{digest}"
    try:
        arn = job.sagemaker.describe_model(ModelName=name)["ModelArn"]  # the same model, created before
    except Exception:  # noqa: BLE001 - not there yet: create it
        try:
            arn = job.sagemaker.create_model(ModelName=name, **request)["ModelArn"]
        except Exception as error:  # noqa: BLE001 - any API error is the step's failure reason
            raise step_types.StepFailure(f"ClientError: CreateModel failed: {error}") from None
    return step_types.Outcome({**request, "ModelName": name, "ModelArn": arn}, {"Model": {"Arn": arn}})


def run_transform(arguments: dict, job: step_types.Job) -> step_types.Outcome:
    model = job.sagemaker.describe_model(ModelName=arguments["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    image = step_types._image_environment(container.get("Image", ""), job)
    split, assemble = (
        arguments["TransformInput"].get("SplitType", "None"),
        arguments["TransformOutput"].get("AssembleWith"),
    )
    if split != "Line" or assemble != "Line":
        raise step_types.StepFailure(
            "ClientError: the local executor transforms SplitType Line with AssembleWith Line only "
            f"(got {split}, {assemble})"
        )
    source = arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    if not s3files.download_prefix(job.s3, source, job.host_path("/opt/ml/transform/input")):
        raise step_types.StepFailure(f"ClientError: no object at {source} to transform")
    model_folder = job.host_path("/opt/ml/model")
    model_folder.mkdir(parents=True, exist_ok=True)
    bucket, key = s3files.split_uri(container["ModelDataUrl"])
    job.s3.download_file(bucket, key, str(model_folder / "model.tar.gz"))
    output = job.host_path("/opt/ml/transform/output")
    output.mkdir(parents=True, exist_ok=True)
    settings = {"DataProcessing": arguments.get("DataProcessing", {})}
    step_types._run_container(
        job,
        image,
        ["python3", TRANSFORM_ENTRY_POINT],
        {**container.get("Environment", {}), "LOCAL_AWS_TRANSFORM": json.dumps(settings)},
        arguments,
        read_only={TRANSFORM_ENTRY_POINT: images.LOCKS / "batch_transform.py"},
    )
    s3files.upload_folder(job.s3, output, arguments["TransformOutput"]["S3OutputPath"])
    arn = f"{job.arn_prefix}:transform-job/{job.name}"
    properties = {**arguments, "TransformJobName": job.name, "TransformJobArn": arn, "TransformJobStatus": "Completed"}
    return step_types.Outcome(properties, {"TransformJob": {"Arn": arn}})
