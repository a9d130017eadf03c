"""SageMaker Pipelines for the model-build repo."""
