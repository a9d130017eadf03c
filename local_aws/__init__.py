"""The local stack: moto plus our own SageMaker emulators, so the whole MLOps loop runs offline.

`LocalStack` starts and stops it (see `local_aws.core.lifecycle`); `scripts/local-stack` is its CLI.
"""

from local_aws.core.lifecycle import LocalStack, LocalStackError

__all__ = ["LocalStack", "LocalStackError"]
