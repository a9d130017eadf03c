"""Settings for every local stack the tests start, themselves or through a script (the environment is inherited)."""

from __future__ import annotations

import os


def pytest_configure(config):
    # Most test stacks serve no endpoint: they skip the runtime's warm-up import of xgboost (1.3 s of CPU per
    # start, about 40 starts). A stack that serves predictions imports it on its first InvokeEndpoint instead.
    # tests/test_end_to_end.py runs the demo with the default (on) and checks that the warm-up ran.
    os.environ.setdefault("LOCAL_STACK_WARM_UP", "off")


# The longest test files (seconds of one file on one worker, clean-clone CI, 2026-12-02), started first: with
# `--dist loadfile` a file runs on one worker, so a long file started last keeps one worker busy alone at the end
# (xdist's default order, most tests first, put the one-test whole demo last). The rest keep collection order.
LONGEST_FIRST = (
    "tests/test_end_to_end.py",  # the whole demo, ~60 s
    "tests/test_batch_inference.py",
    "tests/local_aws/test_executor.py",
    "tests/test_event_routing.py",
    "tests/local_aws/test_persistence.py",
    "tests/test_batch_deploy.py",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    root = config.rootpath
    items.sort(key=lambda item: rank.get(item.path.relative_to(root).as_posix(), len(rank)))
