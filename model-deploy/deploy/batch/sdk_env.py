"""The SageMaker SDK v3 workarounds the batch pipeline's upsert needs (the same ones model-build's sdk_env has).

Repeated here on purpose: the deploy repo stands alone and cannot import the build repo. Call `configure()`
before importing anything from `sagemaker.*`:
- the SDK builds boto3 clients at import time, so the region must already be set;
- role validation calls iam:SimulatePrincipalPolicy, which the least-privileged CI role may not make;
- telemetry makes STS calls and HTTP requests from a thread: the sender is replaced by a no-op;
- the default bucket is named, never probed with s3:ListBuckets;
- ClarifyCheckStep uploads its analysis config while the pipeline is built, under a timestamp + uuid4 path
  that goes into the definition: it is staged at a content-addressed path instead and uploaded by upsert;
- building re-reads botocore's data files about ten times: see `lighter_build`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings


def configure(region: str) -> None:
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_REGION"] = region
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    quiet()


def quiet() -> None:
    # Some SDK modules set their logger's level when imported: called again once the SDK is in.
    for name in ("sagemaker", "sagemaker.config", "sagemaker.core.utils.utils"):
        logging.getLogger(name).setLevel(os.environ.get("SAGEMAKER_SDK_LOG_LEVEL", "ERROR"))
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Running within a PipelineSession", category=UserWarning)


# --- lighter_build: the same in model-build/pipelines/sdk_env.py (tests/test_seeded_copies.py pins both) ---
def lighter_build() -> None:
    """Skip two costs of the SDK (3.27.*) that change nothing in the definition: ~1 s of CPU a build.

    - each image URI lookup (`image_uris.retrieve`, six a build) reads botocore's endpoints.json, 1 MB of JSON,
      through a new loader: the resolver is built once per process instead;
    - ProcessingStep and TransformStep build a whole local-mode client (a boto3 session, its service models)
      only to read one method's name: they get a client class that is not initialized.
    """
    import functools

    from sagemaker.core import common_utils
    from sagemaker.mlops.workflow import steps

    if not hasattr(common_utils._botocore_resolver, "cache_info"):
        common_utils._botocore_resolver = functools.cache(common_utils._botocore_resolver)
    local_client = steps.LocalSagemakerClient
    if local_client.__name__ != "_MethodNamesOnly":
        steps.LocalSagemakerClient = type("_MethodNamesOnly", (local_client,), {"__init__": lambda self: None})


# --- end of lighter_build ---


def pipeline_session(region: str, default_bucket: str):
    configure(region)
    import boto3
    from sagemaker.core.telemetry import telemetry_logging
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    telemetry_logging._send_telemetry_request = lambda *_args, **_kwargs: None
    lighter_build()
    quiet()
    session = PipelineSession(boto_session=boto3.Session(region_name=region), default_bucket=default_bucket)
    session._default_bucket = default_bucket  # the SDK attribute that skips the ListBuckets probe (3.27.*)
    return session


_staged: dict[str, bytes] = {}


def staged_files() -> dict[str, bytes]:
    """S3 URI -> bytes of the analysis configs staged while building the pipeline in this process."""
    return dict(_staged)


def stage_clarify_configs(config_prefix: str) -> None:
    """Put ClarifyCheckStep's analysis configs at `<config_prefix>/<kind>/<sha256>/analysis_config.json`."""
    from sagemaker.core.model_monitor.clarify_model_monitoring import ClarifyModelMonitor
    from sagemaker.mlops.workflow import clarify_check_step

    _staged.clear()

    def stage(kind: str, body: bytes) -> str:
        uri = f"{config_prefix.rstrip('/')}/{kind}/{hashlib.sha256(body).hexdigest()[:16]}/analysis_config.json"
        _staged[uri] = body
        return uri

    def processing_config(analysis_config_file, _s3_output_path, _session, _kms_key):
        with open(analysis_config_file, "rb") as handle:
            return stage("clarify", handle.read())

    def monitoring_config(_monitor, analysis_config, _output_s3_uri, _job_definition_name, _kms_key):
        return stage("monitoring", json.dumps(analysis_config, sort_keys=True).encode())

    clarify_check_step._upload_analysis_config = processing_config
    ClarifyModelMonitor._upload_analysis_config = monitoring_config
