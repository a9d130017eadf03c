"""Names derived from the project: stages, stacks, endpoints and the staging results' S3 key."""

STAGES = ("staging", "prod")


def stack_name(project_name: str, stage: str) -> str:
    # The sagemaker- prefix is what SageMaker project roles are allowed to manage.
    return f"sagemaker-{project_name}-deploy-{stage}"


def endpoint_name(project_name: str, stage: str) -> str:
    return f"{project_name}-{stage}"


def staging_results_key(project_name: str, package_version: int) -> str:
    """Where staging-test keeps the results of one package version in the artifact bucket.

    In S3, not only in the job's artifacts: a laptop (the demo's summary) can read them wherever the job ran.
    """
    return f"staging-tests/{project_name}/{package_version}/staging-test-results.json"


def batch_stack_name(project_name: str, stage: str) -> str:
    """The stage's batch inference triggers (batch-schedule-template.yml): its schedule and its S3 rule."""
    return f"sagemaker-{project_name}-batch-{stage}"
