"""The demo's two-account summary: which account the prod role is in, and where the prod endpoint lives.

Read as production reads it: with the credentials of PROD_DEPLOY_ROLE_ARN, assumed through moto's STS (the
production job got them from its ID token). The tooling account is then asked too, so "nowhere else" is a
finding, not an assumption.
"""

from __future__ import annotations

from local_aws import LocalStack


class TwoAccountError(RuntimeError):
    pass


def summary(stack: LocalStack, prod_role_arn: str, prod_stack: str) -> dict[str, str]:
    """Facts for the demo's summary; raise TwoAccountError if prod's endpoint is not (only) in the role's account."""
    import boto3

    env = stack.env
    credentials = stack.client("sts").assume_role(RoleArn=prod_role_arn, RoleSessionName="demo-summary")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=env["AWS_REGION"],
    )
    role_account = session.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"]).get_caller_identity()["Account"]
    cloudformation = session.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"])
    outputs = cloudformation.describe_stacks(StackName=prod_stack)["Stacks"][0].get("Outputs", [])
    name = {o["OutputKey"]: o["OutputValue"] for o in outputs}["EndpointName"]
    sagemaker = session.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL_SAGEMAKER"])
    endpoint_arn = sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"]
    endpoint_account = endpoint_arn.split(":")[4]
    tooling = stack.client("sagemaker")
    elsewhere = [e["EndpointName"] for e in tooling.list_endpoints()["Endpoints"] if e["EndpointName"] == name]
    if endpoint_account != role_account or elsewhere:
        raise TwoAccountError(
            f"prod endpoint {name} is in account {endpoint_account}"
            + (f" and also in the tooling account {stack.info['account_id']}" if elsewhere else "")
            + f": expected in the prod role's account {role_account} only"
        )
    tooling_account = stack.info["account_id"]
    return {
        "Prod role": f"PROD_DEPLOY_ROLE_ARN {prod_role_arn} (account {role_account})",
        "Prod endpoint": f"{endpoint_arn} (account {endpoint_account}; none in tooling account {tooling_account})",
    }
