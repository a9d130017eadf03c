"""A stack update honours each resource's `Condition`, as CloudFormation does (moto 5.2.5's update does not).

moto's `ResourceMap.update` sends every resource whose JSON or referenced parameters changed to
`parse_and_update_resource`, which checks no condition (its create, `parse_and_create_resource`, does). A resource
that a false condition kept out of the stack then reaches its model's update with `original_resource=None`
(most models crash on it: the stack answers 500), and one whose condition turned false would be updated, not
deleted. Here, as CloudFormation does: a false condition deletes the resource if it exists and leaves none; a true
one updates it, or creates it when the stack has none yet (its condition was false before). Left as moto has it:
its diff sees a resource only when its JSON or a parameter it references changed, so a condition that flips
alone (through a parameter only the condition reads) still changes nothing.

Installed by importing this module (the server imports it with the CloudFormation models, before the journal is
replayed): it replaces the module-level function moto's `update` calls, once moto's parsing module is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

PARSING = "moto.cloudformation.parsing"  # imports every moto service's models: ~1 s, so it is never imported here


def _patch(parsing) -> None:
    update_resource = parsing.parse_and_update_resource

    def update_honouring_condition(
        logical_id: str, resource_json: dict[str, Any], resources_map, account_id: str, region_name: str
    ):
        condition = resource_json.get("Condition")
        existing = resources_map._parsed_resources.get(logical_id)
        if condition and not resources_map.lazy_condition_map[condition]:
            if existing is not None:
                resources_map._delete_resource(existing, resource_json)
            return None
        if existing is None:
            return parsing.parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name)
        return update_resource(logical_id, resource_json, resources_map, account_id, region_name)

    parsing.parse_and_update_resource = update_honouring_condition


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches moto's parsing module right after its first import (a stack start that makes no stack never pays
    for importing it)."""

    def find_spec(self, name, path, target=None):
        if name != PARSING:
            return None
        sys.meta_path.remove(self)  # the regular finders find the module; this finder only wraps its loading
        spec = importlib.util.find_spec(name)
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if PARSING in sys.modules:
        _patch(sys.modules[PARSING])
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


install()
