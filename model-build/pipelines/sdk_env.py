"""Every SageMaker SDK v3 workaround this repo needs, in one place.

Import this module, and call `configure()`, before anything from `sagemaker.*`:
- the SDK builds boto3 clients at import time, so the region must already be set;
- role validation calls iam:SimulatePrincipalPolicy, a permission the least-privileged
  CI role does not have (SageMaker itself rejects a bad role when a job starts);
- telemetry sends STS calls and HTTP requests from a background thread: switched off. The SDK's
  own opt-out (a config file) makes every config lookup re-validate the file against a JSON
  schema, about 0.4 s each and 20 s per build in 3.27, so the sender itself is replaced;
- building a definition probes the default bucket with s3:ListBuckets: we name the bucket
  the project stack created instead (see `pipeline_session`);
- ClarifyCheckStep uploads its analysis_config.json twice while the pipeline is built, one copy under a
  timestamp + uuid4 path that goes into the definition: both are staged at content-addressed paths
  instead, like the step scripts, and uploaded by `run_pipeline run` (see `stage_clarify_configs`);
- building re-reads botocore's data files about ten times (over half of a build's CPU): see `lighter_build`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings

DEFAULT_REGION = "us-east-1"


def configure(region: str | None = None) -> str:
    """Set the process environment the SDK reads at import time. Returns the region in use."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_REGION"] = region
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    _quiet_sdk_logs()
    return region


def _quiet_sdk_logs() -> None:
    """The SDK logs every default it applies and warns about fields it moves at run time: noise in CI.

    Some SDK modules set their logger's level when imported, so this runs again once the SDK is in.
    SAGEMAKER_SDK_LOG_LEVEL=INFO brings the messages back when debugging the SDK itself.
    """
    for name in ("sagemaker", "sagemaker.config", "sagemaker.core.utils.utils"):
        logging.getLogger(name).setLevel(os.environ.get("SAGEMAKER_SDK_LOG_LEVEL", "ERROR"))
    # Importing the SDK configures the root logger at INFO, which makes botocore narrate every call.
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Running within a PipelineSession", category=UserWarning)


def disable_telemetry() -> None:
    """Replace the SDK's telemetry sender with a no-op (import-time safe: call after configure)."""
    from sagemaker.core.telemetry import telemetry_logging

    telemetry_logging._send_telemetry_request = _no_telemetry


def _no_telemetry(*_args, **_kwargs) -> None:
    return None


# --- lighter_build: the same in model-deploy/deploy/batch/sdk_env.py (tests/test_seeded_copies.py pins both) ---
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
    """A PipelineSession bound to `default_bucket`, which is never probed or created.

    The SDK checks the default bucket with s3:ListBuckets even when one is given; least privilege
    denies that call, and the project stack already owns the bucket, so the check is skipped by
    setting the session's resolved bucket (an SDK attribute, pinned with sagemaker==3.27.*).
    """
    configure(region)
    disable_telemetry()
    lighter_build()
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    _quiet_sdk_logs()
    session = PipelineSession(boto_session=boto3.Session(region_name=region), default_bucket=default_bucket)
    session._default_bucket = default_bucket
    return session


# Content-addressed files the definition refers to, uploaded before the pipeline is upserted: S3 URI -> bytes.
_staged: dict[str, bytes] = {}


def staged_files() -> dict[str, bytes]:
    """The files staged while building a pipeline in this process (the Clarify analysis configs)."""
    return dict(_staged)


def _stage(prefix: str, body: bytes) -> str:
    uri = f"{prefix.rstrip('/')}/{hashlib.sha256(body).hexdigest()[:16]}/analysis_config.json"
    _staged[uri] = body
    return uri


def stage_clarify_configs(config_prefix: str) -> None:
    """Make ClarifyCheckStep put its analysis configs at `<config_prefix>/<sha256>/analysis_config.json`.

    The SDK uploads them at build time (an S3 call from `definition`, and a timestamp + uuid4 in one path, so
    the definition would change on every build and the check would never hit the cache). Both SDK upload
    functions are replaced (private names, pinned with sagemaker==3.27.*): the config is recorded here
    instead, addressed by its content, and `run_pipeline run` uploads it with the step code.
    """
    from sagemaker.core.model_monitor.clarify_model_monitoring import ClarifyModelMonitor
    from sagemaker.mlops.workflow import clarify_check_step

    _staged.clear()  # one build at a time: only this build's files are staged

    def processing_config(analysis_config_file, _s3_output_path, _session, _kms_key):
        with open(analysis_config_file, "rb") as handle:
            return _stage(f"{config_prefix}/clarify", handle.read())

    def monitoring_config(_monitor, analysis_config, _output_s3_uri, _job_definition_name, _kms_key):
        return _stage(f"{config_prefix}/monitoring", json.dumps(analysis_config, sort_keys=True).encode())

    clarify_check_step._upload_analysis_config = processing_config
    ClarifyModelMonitor._upload_analysis_config = monitoring_config
