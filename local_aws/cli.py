"""The local stack: moto plus the project's SageMaker emulators, on 127.0.0.1, in the background.

    scripts/local-stack up        start it (or find it running); create the artifact bucket and model package group
    scripts/local-stack env       print `export ...` lines:  eval "$(scripts/local-stack env)"
    scripts/local-stack status    what runs, where (exit code 3 when stopped)
    scripts/local-stack down      stop it by PID (does nothing when it is not running)
    scripts/local-stack monitor ENDPOINT [--schedule NAME]
                                  one Model Monitor data-quality execution over the endpoint's captured data
    scripts/local-stack schedule fire NAME [--group GROUP]
                                  invoke an EventBridge Scheduler schedule now, by the scheduler's own path
                                  (the target's role assumed, its pipeline parameters passed)

State, logs and events: .local/ at the repo root, or --state-dir / LOCAL_STACK_STATE_DIR.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from local_aws.core.lifecycle import UNSET_VARIABLES, LocalStack, LocalStackError, default_state_dir, lock_holder
from local_aws.events.bus import EVENTS_FILE, scan_events

SCRIPT = "scripts/local-stack"
EXIT_STOPPED = 3  # as `systemctl status` / LSB: "not running"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=SCRIPT, description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "env", "monitor", "schedule"])
    parser.add_argument("arguments", nargs="*", help="monitor: ENDPOINT; schedule: fire NAME")
    parser.add_argument("--group", default=None, help="schedule group (schedule fire; default: default)")
    parser.add_argument("--schedule", default=None, help="monitoring schedule name (monitor)")
    parser.add_argument("--state-dir", type=Path, default=None, help=f"state folder (default {default_state_dir()})")
    parser.add_argument("--region", default=None, help="region the stack answers for (up; default us-east-1)")
    parser.add_argument("--plugin", action="append", default=[], help="extra module for the server to load (up)")
    parser.add_argument(
        "--prod-account",
        default=os.environ.get("PROD_ACCOUNT_ID") or None,
        help="production in this second account id (up; PROD_ACCOUNT_ID): bootstraps prod-account.yml there",
    )
    args = parser.parse_args(argv)

    progress = (lambda message: print(message, file=sys.stderr)) if args.command == "env" else print
    try:
        prod_account = args.prod_account if args.command == "up" else None  # the others take the running stack's
        stack = LocalStack(
            state_dir=args.state_dir,
            region=args.region,
            plugins=args.plugin,
            progress=progress,
            prod_account_id=prod_account,
        )
        if args.command == "monitor":
            return monitor(stack, args.arguments[0] if args.arguments else None, args.schedule)
        if args.command == "schedule":
            return schedule(stack, args.arguments, args.group)
        return COMMANDS[args.command](stack)
    except LocalStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def up(stack: LocalStack) -> int:
    env = stack.start()
    print(f"\nlocal stack up: SageMaker API and runtime at {env['AWS_ENDPOINT_URL_SAGEMAKER']},")
    print(f"                other services (moto) at {env['AWS_ENDPOINT_URL']}")
    print(f'use it from this shell:  eval "$({_self_command(stack)} env)"')
    return 0


def down(stack: LocalStack) -> int:
    stack.stop()
    return 0


def status(stack: LocalStack) -> int:
    info = stack.running()
    if info is None:
        orphan = lock_holder(stack.state_dir)
        if orphan is not None:
            print(f"local stack: running as PID {orphan}, but without a readable stack.json (state {stack.state_dir}).")
            print(f"  Stop it with `{_self_command(stack)} down`, then start it again.")
            return 1
        print(f"local stack: stopped (state {stack.state_dir})")
        return EXIT_STOPPED
    scanned = scan_events(stack.state_dir)
    for message in scanned.dropped(EVENTS_FILE):
        print(message.replace("dropped", "ignored", 1))
    emitted = scanned.entries
    print(f"local stack: running, PID {info['pid']}, since {info['started_at']}")
    print(f"  gateway (SageMaker API + runtime): {info['gateway_url']}")
    print(f"  moto (every other service):        {info['moto_url']}")
    print(f"  region {info['region']}, account {info['account_id']}")
    print(f"  local operations: {', '.join(info['local_operations']) or 'none'}")
    print(f"  events emitted: {len(emitted)} ({stack.state_dir / EVENTS_FILE})")
    gitlab = (info.get("services") or {}).get("gitlab")
    if gitlab:
        print(f"  local GitLab (deploy project {gitlab['deploy_project_id']}): {gitlab['url']}")
    print(f"  log: {info['log']}")
    return 0


def env(stack: LocalStack) -> int:
    variables = stack.env  # raises LocalStackError when stopped
    print(f"unset {' '.join(UNSET_VARIABLES)}")  # real credentials must not mix with the local stack's
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def monitor(stack: LocalStack, endpoint: str | None, schedule: str | None) -> int:
    from local_aws.sagemaker import monitoring

    if not endpoint:
        print(f"error: usage: {SCRIPT} monitor ENDPOINT [--schedule NAME]", file=sys.stderr)
        return 2
    try:
        report = monitoring.run(endpoint, schedule, environ=stack.environ())  # raises LocalStackError when stopped
    except monitoring.MonitoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(monitoring.format_report(report))
    return 0


def schedule(stack: LocalStack, arguments: list[str], group: str | None) -> int:
    from local_aws.scheduler import invoke

    if len(arguments) != 2 or arguments[0] != "fire":
        print(f"error: usage: {SCRIPT} schedule fire NAME [--group GROUP]", file=sys.stderr)
        return 2
    try:
        fired = invoke.fire(arguments[1], stack.environ(), group=group, state_dir=stack.state_dir)
    except invoke.ScheduleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"schedule {fired.schedule}: started {fired.pipeline_execution_arn}")
    print(f"  as {fired.role_arn} (assumed by {invoke.SERVICE_PRINCIPAL})")
    for parameter in fired.parameters:
        print(f"  {parameter['Name']} = {parameter['Value']}")
    return 0


def _self_command(stack: LocalStack) -> str:
    command = SCRIPT
    if stack.state_dir != default_state_dir().resolve():
        command += f" --state-dir {shlex.quote(str(stack.state_dir))}"
    return command


COMMANDS = {"up": up, "down": down, "status": status, "env": env}
