"""Settings for every local stack the tests start, themselves or through a script (the environment is inherited)."""

from __future__ import annotations

import os


def pytest_configure(config):
    # Most test stacks serve no endpoint: they skip the runtime's warm-up import of xgboost (1.3 s of CPU per
    # start, about 40 starts). A stack that serves predictions imports it on its first InvokeEndpoint instead.
    # tests/test_end_to_end.py runs the demo with the default (on) and checks that the warm-up ran.
    os.environ.setdefault("LOCAL_STACK_WARM_UP", "off")
