"""The pytest plugin both staging suites report through (deploy/staging_tests, deploy/batch/staging_tests): each
test's outcome and time, the figures the tests measured, and at the end the results JSON (--results-json)."""

from __future__ import annotations

import json
from pathlib import Path


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
