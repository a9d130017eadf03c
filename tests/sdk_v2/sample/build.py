"""Build the sample pipeline with SDK v2, upsert it and start it: `python build.py ROLE BUCKET GROUP`.

Runs in .venv-sdk2 with the local stack's environment (AWS_ENDPOINT_URL*, dummy keys, region): the SDK's
boto3 then talks to the stack, as it would to AWS. Prints the execution ARN.
"""

import os
import sys

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from pipeline import get_pipeline  # noqa: E402

if __name__ == "__main__":
    role, bucket, group = sys.argv[1:4]
    pipeline = get_pipeline(os.environ["AWS_REGION"], role, bucket, group)
    pipeline.upsert(role_arn=role)
    print(pipeline.start().arn)
