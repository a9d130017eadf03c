"""Pipeline executions and the step cache, kept as JSON files in the stack's state folder.

The gateway answers DescribePipelineExecution and ListPipelineExecutionSteps from here, while the
runner thread writes to it, so every access holds one lock.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.RLock()


class ExecutionStore:
    def __init__(self, state_dir: Path):
        self.folder = Path(state_dir) / "pipeline-executions"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cache_file = self.folder / "step-cache.json"

    # Executions: one file each, named by execution id.
    def save(self, execution: dict[str, Any]) -> None:
        with _lock:
            execution["LastModifiedTime"] = time.time()
            _write(self.folder / f"{execution['PipelineExecutionArn'].rsplit('/', 1)[1]}.json", execution)

    def load(self, execution_arn: str) -> dict[str, Any] | None:
        path = self.folder / f"{execution_arn.rsplit('/', 1)[1]}.json"
        with _lock:
            if not path.exists():
                return None
            execution = json.loads(path.read_text())
        return execution if execution["PipelineExecutionArn"] == execution_arn else None

    def for_pipeline(self, pipeline_arn: str) -> list[dict[str, Any]]:
        with _lock:
            executions = [json.loads(p.read_text()) for p in self.folder.glob("*.json") if p != self.cache_file]
        return [e for e in executions if e["PipelineArn"] == pipeline_arn]

    def fail_interrupted(self, reason: str) -> list[str]:
        """Executions left Executing by a server that is gone (killed, crashed) end Failed, with their
        running steps. Called at startup, before any runner of this process exists."""
        ended = []
        with _lock:
            for path in sorted(self.folder.glob("*.json")):
                if path == self.cache_file:
                    continue
                try:
                    execution = json.loads(path.read_text())
                except ValueError:
                    continue  # written atomically, so not ours to mend
                if execution.get("PipelineExecutionStatus") not in ("Executing", "Stopping"):
                    continue
                for step in execution.get("Steps", []):
                    if step.get("StepStatus") in ("Starting", "Executing", "Stopping"):
                        step.update(StepStatus="Failed", EndTime=time.time(), FailureReason=reason)
                execution.update(PipelineExecutionStatus="Failed", FailureReason=reason)
                self.save(execution)
                ended.append(execution["PipelineExecutionArn"])
        return ended

    # Step cache: cache key -> what a successful run of the step produced.
    def cached(self, key: str, max_age_seconds: float) -> dict[str, Any] | None:
        with _lock:
            entry = self._cache().get(key)
        if entry and time.time() - entry["EndTime"] <= max_age_seconds:
            return entry
        return None

    def remember(self, key: str, entry: dict[str, Any]) -> None:
        with _lock:
            cache = self._cache()
            cache[key] = entry
            _write(self.cache_file, cache)

    def _cache(self) -> dict[str, Any]:
        return json.loads(self.cache_file.read_text()) if self.cache_file.exists() else {}


def _write(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1))
    temporary.replace(path)  # readers never see half a file, and a crash mid-write never leaves one
