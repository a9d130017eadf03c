"""`<stage>-config.json`: a stage's template Parameters and stack Tags (and the staging test budgets), checked."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.errors import DeployError
from deploy.naming import STAGES
from deploy.paths import REPO_DIR


def load(stage: str, repo_dir: Path = REPO_DIR) -> dict:
    """The stage's config file; raise DeployError naming what is wrong with it."""
    if stage not in STAGES:
        raise DeployError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    path = repo_dir / f"{stage}-config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"{path} is missing: every stage needs its config file") from None
    except json.JSONDecodeError as error:
        raise DeployError(f"{path} is not valid JSON: {error}") from None
    parameters = config.get("Parameters")
    if not isinstance(parameters, dict):
        raise DeployError(f'{path}: expected an object "Parameters" with the template parameters of the stage')
    if parameters.get("StageName") != stage:
        raise DeployError(f'{path}: Parameters.StageName must be "{stage}", found {parameters.get("StageName")!r}')
    for section in ("Parameters", "Tags"):
        for key, value in config.get(section, {}).items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise DeployError(f"{path}: {section}.{key} must be a string or a number, found {value!r}")
    return config
