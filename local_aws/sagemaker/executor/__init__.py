"""The local pipeline executor: runs the stored pipeline definition JSON, the exact document SageMaker
would get, with local Python, xgboost and moto. Its API operations are in `handlers`, registered with the
gateway by `local_aws.sagemaker.responses`."""
