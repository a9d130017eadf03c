"""SageMaker on the local stack: the pipeline executor (`executor/`) and the model registry's semantics
(`registry`), answered behind SageMaker's own API (`responses`). Importing it registers the operations."""

from local_aws.sagemaker import responses

responses.register()
