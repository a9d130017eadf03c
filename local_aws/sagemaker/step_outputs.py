"""What each succeeded step of an execution produced (its properties and Metadata), kept per execution.

Selective execution and RetryPipelineExecution reuse earlier steps' outputs instead of running them
again: a selected step reads `Steps.Train.ModelArtifacts...` from the reference execution's Train.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def _path(state_dir: Path, execution_arn: str) -> Path:
    folder = Path(state_dir) / "step-outputs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{execution_arn.rsplit('/', 1)[1]}.json"


def save(state_dir: Path, execution_arn: str, step_name: str, properties: dict, metadata: dict) -> None:
    path = _path(state_dir, execution_arn)
    with _lock:
        outputs = json.loads(path.read_text()) if path.exists() else {}
        outputs[step_name] = {"Properties": properties, "Metadata": metadata}
        path.write_text(json.dumps(outputs))


def load(state_dir: Path, execution_arn: str) -> dict[str, dict[str, Any]]:
    """step name -> {"Properties", "Metadata"} for every step of the execution that succeeded."""
    path = _path(state_dir, execution_arn)
    with _lock:
        return json.loads(path.read_text()) if path.exists() else {}
