"""Model (CreateModel) and Transform (a batch transform job) steps.

A Model step creates a SageMaker Model from its request. Its name is derived from the request's content (the
image and model data), where SageMaker generates a fresh one per execution: the same trained model then has
the same name, so the Transform and ClarifyCheck steps that read `Steps.<model>.ModelName` can hit the step
cache when nothing changed (on AWS they run again).

A Transform step runs the model's own image environment in the sandbox (`images/batch_transform.py`):
each input object is split by line, filtered and joined as DataProcessing says, and written as
`<S3OutputPath>/<object key relative to the input prefix>.out`, one record a line. A model whose container
names a model package (ModelPackageName) serves that package's image and model data, as SageMaker resolves it.
TransformResources.InstanceCount instances run, each in its own sandbox over its own input objects (SageMaker
distributes whole objects across instances; an object is never split between two), as many at once as the
machine has cores. BatchStrategy and MaxPayloadInMB are checked: a mini-batch (MultiRecord) or a record
(SingleRecord) larger than MaxPayloadInMB fails the job, as the container would refuse it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def serving_container(sagemaker, model: dict) -> dict:
    """The model's container as it serves: a ModelPackageName container takes the package's image and model data."""
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    package_name = container.get("ModelPackageName")
    if not package_name:
        return container
    package = sagemaker.describe_model_package(ModelPackageName=package_name)
    inference = (package.get("InferenceSpecification", {}).get("Containers") or [{}])[0]
    environment = {**inference.get("Environment", {}), **container.get("Environment", {})}
    return {**inference, "Environment": environment, "ModelPackageName": package_name}


def run_transform(arguments: dict, job: step_types.Job) -> step_types.Outcome:
    model = job.sagemaker.describe_model(ModelName=arguments["ModelName"])
    container = serving_container(job.sagemaker, model)
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
    staging = job.host_path("/opt/ml/transform/all-input")
    if not s3files.download_prefix(job.s3, source, staging):
        raise step_types.StepFailure(f"ClientError: no object at {source} to transform")
    objects = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
    model_archive = job.host_path("/opt/ml/transform/model.tar.gz")
    bucket, key = s3files.split_uri(container["ModelDataUrl"])
    job.s3.download_file(bucket, key, str(model_archive))
    count = int(arguments.get("TransformResources", {}).get("InstanceCount", 1))
    instances = [f"algo-{i + 1}" for i in range(min(count, len(objects)))]
    settings = {
        "DataProcessing": arguments.get("DataProcessing", {}),
        "BatchStrategy": arguments.get("BatchStrategy", "MultiRecord"),
        "MaxPayloadInMB": int(arguments.get("MaxPayloadInMB", 6)),
    }

    def run_instance(number: int) -> Path:
        host = instances[number]
        instance = dataclasses.replace(job, folder=job.folder / "instances" / host)
        for relative in objects[number :: len(instances)]:  # whole objects, round-robin over the sorted keys
            target = instance.host_path("/opt/ml/transform/input") / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((staging / relative).read_bytes())
        (instance.host_path("/opt/ml/model")).mkdir(parents=True, exist_ok=True)
        (instance.host_path("/opt/ml/model") / "model.tar.gz").write_bytes(model_archive.read_bytes())
        output = instance.host_path("/opt/ml/transform/output")
        output.mkdir(parents=True, exist_ok=True)
        environment = {
            **container.get("Environment", {}),
            "LOCAL_AWS_TRANSFORM": json.dumps(settings),
            "SM_CURRENT_HOST": host,
            "SM_HOSTS": json.dumps(instances),
        }
        step_types._run_container(
            instance,
            image,
            ["python3", TRANSFORM_ENTRY_POINT],
            environment,
            arguments,
            read_only={TRANSFORM_ENTRY_POINT: images.LOCKS / "batch_transform.py"},
        )
        return output

    # Bounded by the cores: more parallel instances than cores would only slow each other down here.
    with ThreadPoolExecutor(max_workers=max(1, min(len(instances), os.cpu_count() or 1))) as pool:
        outputs = list(pool.map(run_instance, range(len(instances))))
    for output in outputs:
        s3files.upload_folder(job.s3, output, arguments["TransformOutput"]["S3OutputPath"])
    arn = f"{job.arn_prefix}:transform-job/{job.name}"
    properties = {**arguments, "TransformJobName": job.name, "TransformJobArn": arn, "TransformJobStatus": "Completed"}
    metadata = {
        "TransformJob": {"Arn": arn},
        "LocalInstances": {h: len(objects[i :: len(instances)]) for i, h in enumerate(instances)},
    }
    return step_types.Outcome(properties, metadata)
