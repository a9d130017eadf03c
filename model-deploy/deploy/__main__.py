"""`python -m deploy <command>`: one command per GitLab CI job, the same on a laptop.

build                 resolve the model package; write the release, build/release.json
deploy-stage STAGE    create/update the stage's stack with the release's inputs, wait, verify the endpoint
staging-test          run the staging test suite: JUnit XML + results JSON in build/ and in the artifact bucket
rollback [STAGE]      put the previous Approved version back (default: prod)
summary               what each stage serves, and the staging test figures
batch-upsert STAGE    put the stage's batch inference pipeline on the release's package (needs the SageMaker SDK)
batch-run STAGE       run the stage's batch inference pipeline once (or --follow a triggered run), print the drift
                      summary
quality-run STAGE     check late labels (--ground-truth S3_PREFIX) with the stage's model-quality pipeline
batch-staging-test    staging batch pipeline + triggers on the release, one run on a sample, compared with the endpoint
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from deploy import build, deploy_stage, environment, rollback, staging_test, summary
from deploy.errors import DeployError
from deploy.naming import STAGES
from deploy.paths import DEFAULT_BUILD_DIR


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--build-dir", type=Path, default=DEFAULT_BUILD_DIR, help="artifacts folder (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("build", help="resolve the model package and write the release")
    deploy = commands.add_parser("deploy-stage", help="create or update a stage's stack and wait for it")
    deploy.add_argument("stage", choices=STAGES)
    test = commands.add_parser("staging-test", help="test the staging endpoint (JUnit XML + results JSON)")
    test.add_argument("--endpoint-name", help="test this endpoint instead of the staging stack's")
    back = commands.add_parser("rollback", help="redeploy the previous Approved version")
    back.add_argument("stage", nargs="?", default="prod", choices=STAGES)
    commands.add_parser("summary", help="what each stage serves, and the staging test figures")
    batch_upsert = commands.add_parser("batch-upsert", help="upsert the stage's batch inference pipeline")
    batch_upsert.add_argument("stage", choices=STAGES)
    batch_run = commands.add_parser("batch-run", help="run the stage's batch inference pipeline once")
    batch_run.add_argument("stage", choices=STAGES)
    batch_run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    batch_run.add_argument("--summary-json", type=Path, help="also write the run's drift summary to this file")
    batch_run.add_argument(
        "--follow", metavar="EXECUTION_ARN", help="follow a run a trigger started (schedule, S3 rule), not a new one"
    )
    quality_run = commands.add_parser("quality-run", help="check late labels with the model-quality pipeline")
    quality_run.add_argument("stage", choices=STAGES)
    quality_run.add_argument(
        "--ground-truth", required=True, metavar="S3_PREFIX", help="s3://.../ground-truth/<batch-execution-id>/"
    )
    commands.add_parser(
        "batch-staging-test", help="staging batch pipeline on the release, one run compared with the staging endpoint"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    if args.command == "build":
        return build.run(environment.load(environment.BUILD_VARIABLES), args.build_dir)
    if args.command == "deploy-stage":
        return deploy_stage.run(environment.load(environment.DEPLOY_VARIABLES), args.stage, args.build_dir)
    if args.command == "staging-test":
        return staging_test.run(environment.load(environment.RESULTS_VARIABLES), args.build_dir, args.endpoint_name)
    if args.command == "rollback":
        return rollback.run(environment.load(environment.BUILD_VARIABLES), args.stage, args.build_dir)
    if args.command == "quality-run":
        from deploy.batch import quality_run

        return quality_run.run(environment.load(environment.RESULTS_VARIABLES), args.stage, args.ground_truth)
    if args.command == "batch-staging-test":
        from deploy.batch import staging  # imports the SageMaker SDK when it upserts (requirements-batch.txt)

        return staging.run(environment.load(environment.BUILD_VARIABLES), args.build_dir)
    if args.command in ("batch-upsert", "batch-run"):
        # Imported here: batch-upsert needs the SageMaker SDK (requirements-batch.txt), no other job installs it.
        from deploy.batch import run as batch_run

        if args.command == "batch-run":
            return batch_run.run(
                environment.load(environment.RESULTS_VARIABLES),
                args.stage,
                args.parameter,
                args.summary_json,
                args.follow,
            )
        from deploy.batch import upsert

        settings = batch_run.stage_settings(args.stage)
        return upsert.run(environment.load(environment.BUILD_VARIABLES), args.stage, args.build_dir, settings)
    return summary.run(environment.load(environment.RESULTS_VARIABLES))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ClientError as error:
        # AWS said no (permissions, throttling, ...): its own message is the clearest explanation.
        print(f"error: AWS refused {error.operation_name}: {error}", file=sys.stderr)
        return 1
    except BotoCoreError as error:
        print(f"error: {error} (check the AWS credentials, region and endpoint settings)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
