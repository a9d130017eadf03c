"""The seeded repos stand alone, so a few settings are written in both; these tests keep each pair equal.

The batch pipeline's attribution drift check (model-deploy) compares its SHAP values with the build's
explainability baseline (model-build): both must run Kernel SHAP with the same samples and seed.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD = REPO_ROOT / "model-build" / "pipelines" / "abalone" / "pipeline.py"
BATCH = REPO_ROOT / "model-deploy" / "deploy" / "batch" / "definition.py"


def constant(path: Path, name: str) -> str:
    # Read from the source: importing the build pipeline would cost the SageMaker SDK's 4 s import.
    found = re.search(rf"^{name} = (\S+)", path.read_text(encoding="utf-8"), re.M)
    assert found, f"{name} is not set in {path}"
    return found.group(1)


def test_the_batch_attribution_check_explains_as_the_build_baseline_did():
    for name in ("SHAP_SAMPLES", "SHAP_SEED"):
        assert constant(BATCH, name) == constant(BUILD, name), name


SDK_ENVS = (
    REPO_ROOT / "model-build" / "pipelines" / "sdk_env.py",
    REPO_ROOT / "model-deploy" / "deploy" / "batch" / "sdk_env.py",
)


def lighter_build_source(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    found = re.search(r"^def lighter_build\(\).*?(?=^# --- end of lighter_build ---)", text, re.M | re.S)
    assert found, f"lighter_build is missing from {path}"
    return found.group(0)


def test_both_sdk_envs_skip_the_same_sdk_costs():
    build, deploy = (lighter_build_source(path) for path in SDK_ENVS)
    assert build == deploy
