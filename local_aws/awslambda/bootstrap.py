"""The Lambda runtime's part: load the handler, call it once with the event, write its result.

    python -m local_aws.awslambda.bootstrap HANDLER FUNCTION_ARN TIMEOUT_SECONDS RESULT_FILE < event.json

Run by `local_aws.awslambda.invoke` with the function's task root as the working folder (first on the import
path). The context object has the attributes Lambda's has and Powertools reads. An exception in the handler
is printed with its traceback, as the runtime logs it, and the exit code is 1.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    deadline: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    handler_name, function_arn, timeout, result_file = argv
    module_name, _, function_name = handler_name.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    name = function_arn.rsplit(":", 1)[-1]
    context = LambdaContext(
        function_name=name,
        invoked_function_arn=function_arn,
        memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
        deadline=time.monotonic() + float(timeout),
        log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}"),
    )
    result = handler(json.load(sys.stdin), context)
    Path(result_file).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
