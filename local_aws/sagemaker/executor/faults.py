"""Fault injection: make a step's next attempts fail with an error type SageMaker retries.

Real capacity errors and throttling never happen on a laptop, so RetryPolicies would go untested.
A test writes `<state dir>/fault-injection.json`, {"StepName": ["SageMaker.CAPACITY_ERROR", ...]};
each attempt of that step takes the first entry and fails with it before it runs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from local_aws.sagemaker.executor import step_types

FILE = "fault-injection.json"
# The message SageMaker gives each error type (the part before ":" is what a RetryPolicy matches on).
MESSAGES = {
    "Step.SERVICE_FAULT": "InternalServerError: We encountered an internal error. Please try again.",
    "Step.THROTTLING": "ThrottlingException: Rate exceeded",
    "SageMaker.JOB_INTERNAL_ERROR": "InternalServerError: We encountered an internal error. Please try again.",
    "SageMaker.CAPACITY_ERROR": "CapacityError: Unable to provision requested ML compute capacity. Please retry.",
    "SageMaker.RESOURCE_LIMIT": "ResourceLimitExceeded: The account-level service limit is exceeded.",
}
_lock = threading.Lock()


class InjectedFault(step_types.StepFailure):
    def __init__(self, exception_type: str):
        super().__init__(MESSAGES[exception_type])
        self.exception_type = exception_type


def inject(state_dir: Path, step_name: str, exception_types: list[str]) -> None:
    unknown = sorted(set(exception_types) - MESSAGES.keys())
    if unknown:
        raise ValueError(f"unknown exception types {unknown}: use {sorted(MESSAGES)}")
    path = Path(state_dir) / FILE
    with _lock:
        faults = json.loads(path.read_text()) if path.exists() else {}
        faults[step_name] = faults.get(step_name, []) + list(exception_types)
        path.write_text(json.dumps(faults))


def raise_next(state_dir: Path, step_name: str) -> None:
    """Raise the step's next injected fault, if one is waiting."""
    path = Path(state_dir) / FILE
    with _lock:
        if not path.exists():
            return
        faults = json.loads(path.read_text())
        waiting = faults.get(step_name) or []
        if not waiting:
            return
        exception_type = waiting.pop(0)
        path.write_text(json.dumps(faults))
    raise InjectedFault(exception_type)
