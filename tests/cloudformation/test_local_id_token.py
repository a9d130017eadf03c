"""The local GitLab's ID token stand-in carries what the prod account's real trust policy checks.

moto's STS checks no trust policy, so a local run cannot show this: prod-account.yml is rendered with the
parameters the local stack deploys it with (local_aws.core.lifecycle), and the policy evaluator decides
AssumeRoleWithWebIdentity for the claims local_gitlab.id_tokens puts in the pressed production job's token.
"""

from __future__ import annotations

from local_aws.core import lifecycle
from local_gitlab import id_tokens, project

from .policy_evaluator import ALLOW, Request, decide
from .test_prod_account_matrix import RenderedProdAccount

ISSUER_HOST = lifecycle.LOCAL_GITLAB_ISSUER.removeprefix("https://")
CI_FILE = lifecycle.REPO_ROOT / "model-deploy" / ".gitlab-ci.yml"


class LocallyDeployed(RenderedProdAccount):
    """prod-account.yml with the parameters `LocalStack._bootstrap_prod_account` gives it."""

    def __init__(self):
        super().__init__()
        self.parameters |= lifecycle.prod_account_parameters("123456789012", "us-east-1")
        self.conditions = {name: self.resolve(c) for name, c in self.template["Conditions"].items()}

    def arn(self, logical_id: str) -> str:
        if logical_id == "GitLabOidcProvider":  # the provider `up` creates for the local issuer
            return f"arn:aws:iam::210987654321:oidc-provider/{ISSUER_HOST}"
        return super().arn(logical_id)


def assumes(job: str) -> bool:
    claims = id_tokens.job_claims(
        lifecycle.LOCAL_GITLAB_ISSUER,
        id_tokens.audience(CI_FILE, job),
        f"{project.NAMESPACE_PATH}/{project.DEPLOY_REPO}",
        project.DEFAULT_BRANCH,
        job_id=1,
        pipeline_id=1,
    )
    request = Request(
        "sts:AssumeRoleWithWebIdentity",
        context={f"{ISSUER_HOST}:{claim}": value for claim, value in claims.items()},
        principal={"Federated": f"arn:aws:iam::210987654321:oidc-provider/{ISSUER_HOST}"},
    )
    return decide(request, [LocallyDeployed().trust_policy("GitLabDeployProdRole")]) == ALLOW


def test_the_production_jobs_stand_in_token_is_one_the_prod_trust_accepts():
    assert assumes("production-deploy") and assumes("production-rollback")


def test_the_same_stand_in_for_another_job_of_the_pipeline_is_refused():
    assert not assumes("staging-deploy") and not assumes("build")  # the default audience
