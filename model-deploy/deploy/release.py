"""The release: what build decided, written once to `build/release.json` and read by every later job.

It holds the resolved model package (ARN, group, version, approval status) and, per stage, the
template Parameters and stack Tags. Nothing else carries the package ARN from build to the later jobs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.errors import DeployError

RELEASE_JSON = "release.json"


@dataclass(frozen=True)
class StageInputs:
    parameters: dict[str, str]  # template parameters
    tags: dict[str, str]  # stack tags
    # The stage's own account and region (deploy/accounts.py); empty: the project's, as in one account.
    account_id: str = ""
    region: str = ""


@dataclass(frozen=True)
class Release:
    package_arn: str
    package_group: str
    package_version: int
    approval_status: str
    stages: dict[str, StageInputs]

    def stage(self, stage: str) -> StageInputs:
        if stage not in self.stages:
            raise DeployError(f"the release has no inputs for stage {stage!r}: run `python -m deploy build` again")
        return self.stages[stage]


def path_in(build_dir: Path) -> Path:
    return build_dir / RELEASE_JSON


def write(release: Release, build_dir: Path) -> Path:
    build_dir.mkdir(parents=True, exist_ok=True)
    path = path_in(build_dir)
    path.write_text(json.dumps(asdict(release), indent=2) + "\n")
    return path


def read(build_dir: Path) -> Release:
    path = path_in(build_dir)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"{path} is missing: run `python -m deploy build` first") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DeployError(
            f"{path} is not valid JSON ({error}): the build job's artifact is damaged or was edited;"
            " run `python -m deploy build` again (in CI: retry the build job)"
        ) from None
    try:
        stages = {stage: StageInputs(**inputs) for stage, inputs in record.pop("stages").items()}
        return Release(**record, stages=stages)
    except (AttributeError, KeyError, TypeError) as error:
        raise DeployError(
            f"{path} is not a release written by this version of build ({type(error).__name__}: {error});"
            " run `python -m deploy build` again"
        ) from None
