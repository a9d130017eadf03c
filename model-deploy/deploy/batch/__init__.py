"""Batch inference: a SageMaker pipeline that scores input files with the approved model and watches for drift.

Only `upsert` imports the SageMaker SDK (requirements-batch.txt); `run`, the Postprocess step script and the
rest of the deploy repo stay on boto3.
"""
