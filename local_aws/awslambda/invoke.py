"""Invoke a Lambda function that moto stores: its handler, its environment, its timeout, its code.

    result = invoke("sagemaker-abalone-TriggerFunction", event, client=context.client,
                    stack_environment=context.environment, task_roots=state_dir / "lambda")

The function's configuration (Handler, Environment, Timeout, MemorySize) is read from moto, as the Lambda
service reads it. The handler runs in a new process (`local_aws.awslambda.bootstrap`) whose working folder is
the function's task root, so its own code is first on the import path, as LAMBDA_TASK_ROOT is on AWS; its
environment is the function's variables on top of the stack's AWS endpoints and, as the Lambda runtime gives
them, credentials of the function's execution role (`Role`), assumed through moto's STS: the handler acts in the
role's account, the function's own, never in the stack's by default (and never with this process's variables).
Its output (the function's log) goes to `<state>/logs/lambda/<function>.log`, the stand-in for its CloudWatch
log group. A handler that raises, or runs past the timeout, is a LambdaError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# What the Lambda runtime passes on from the machine: the rest of the environment is the function's own.
INHERITED = ("PATH", "LANG", "TZ", "HOME")


class LambdaError(RuntimeError):
    pass


def invoke(
    function_name: str,
    event: Mapping[str, Any],
    *,
    client: Callable[[str], Any],
    stack_environment: Mapping[str, str],
    task_roots: Path,
    logs: Path,
) -> Any:
    config = client("lambda").get_function_configuration(FunctionName=function_name)
    name = config["FunctionName"]
    task_root = task_roots / name
    if not task_root.is_dir():
        raise LambdaError(f"function {name} has no code in {task_root}: provision it again (scripts/local-stack up)")
    timeout = int(config.get("Timeout") or 3)
    environment = {key: os.environ[key] for key in INHERITED if key in os.environ}
    environment |= dict(stack_environment)
    environment |= (config.get("Environment") or {}).get("Variables") or {}
    environment |= _role_credentials(client, config)
    environment |= {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize") or 128),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "LAMBDA_TASK_ROOT": str(task_root),
        "PYTHONUNBUFFERED": "1",
    }
    log_file = logs / f"{name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lambda-") as scratch, log_file.open("ab") as log:
        result_path = Path(scratch) / "result.json"
        command = [sys.executable, "-m", "local_aws.awslambda.bootstrap", config["Handler"], config["FunctionArn"]]
        command += [str(timeout), str(result_path)]
        try:
            finished = subprocess.run(
                command,
                input=json.dumps(event).encode(),
                cwd=task_root,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout + 5,  # the runtime's own deadline, plus its start
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise LambdaError(f"function {name} timed out after {timeout} s (log: {log_file})") from error
        if finished.returncode != 0:
            raise LambdaError(
                f"function {name} failed with exit code {finished.returncode}: its error is in {log_file}"
            )
        return json.loads(result_path.read_text(encoding="utf-8"))


def _role_credentials(client: Callable[[str], Any], config: Mapping[str, Any]) -> dict[str, str]:
    """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN of the function's execution role."""
    role = config.get("Role") or ""
    if not role.startswith("arn:"):
        raise LambdaError(f"function {config['FunctionName']} has no execution role ARN (Role {role!r})")
    session = config["FunctionName"][:64]  # the Lambda service names the session after the function
    credentials = client("sts").assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
