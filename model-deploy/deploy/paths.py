"""Where the repo's files are: the template, the stage configs and the default artifacts folder."""

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_DIR / "endpoint-config-template.yml"
DEFAULT_BUILD_DIR = REPO_DIR / "build"
