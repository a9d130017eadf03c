"""How both staging suites run and report (deploy/staging_tests, deploy/batch/staging_tests): `run_suite` runs one
with pytest, and its conftest's `Reporter` writes each test's outcome and time, the figures the tests measured,
and at the end the results JSON (--results-json)."""

from __future__ import annotations

import json
from pathlib import Path


def run_suite(suite_dir: Path, name: str, report_xml: Path, results_json: Path, options: list[str]) -> tuple[int, dict]:
    """pytest on the suite alone (none of the repo's own pytest settings), its JUnit XML and results JSON written
    whatever the outcome; the exit code and the results ({} when the suite wrote none)."""
    import pytest

    exit_code = pytest.main(
        [
            str(suite_dir),
            "--rootdir",
            str(suite_dir),
            "-o",
            "addopts=",
            "-o",
            f"junit_suite_name={name}",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-v",
            f"--junitxml={report_xml}",
            f"--results-json={results_json}",
            *options,
        ]
    )
    return exit_code, json.loads(results_json.read_text()) if results_json.is_file() else {}


class Reporter:
    """Collects outcomes and figures; `results(options)` names what the suite adds to the JSON."""

    def __init__(self, config):
        self.config = config
        self.outcomes: dict[str, dict] = {}
        self.figures: dict[str, object] = {}

    def results(self, options) -> dict:
        return {}

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or report.outcome != "passed":
            outcome = report.outcome if report.when == "call" else ("error" if report.failed else report.outcome)
            message = ""
            if report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash else str(report.longrepr).splitlines()[-1]
            self.outcomes[name] = {"outcome": outcome, "seconds": round(report.duration, 3), "message": message}

    def pytest_sessionfinish(self, session, exitstatus):
        path = self.config.getoption("results_json")
        if not path:
            return
        options = self.config.option
        results = {
            **self.results(options),
            "passed": exitstatus == 0 and bool(self.outcomes),
            "figures": self.figures,
            "tests": self.outcomes,
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2) + "\n")
