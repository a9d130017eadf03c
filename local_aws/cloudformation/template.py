"""Read a CloudFormation template and resolve the intrinsic functions of the parts the local stack provisions.

    template = load(Path("cloudformation/project.yml"))
    value = resolve(template["Resources"]["ApprovalRule"]["Properties"]["EventPattern"], references)

`references` maps a parameter or logical resource id to what `Ref` gives, and "Id.Attribute" to what
`Fn::GetAtt` gives. Anything the map lacks, or an intrinsic function this module does not evaluate, raises
TemplateError naming it: a rule must never be provisioned with a pattern that differs from the template's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class TemplateError(ValueError):
    pass


# libyaml's parser when PyYAML has it (the wheels do): the pure-Python one took 1.4 s of CPU for project.yml.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CloudFormationLoader(_SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...) as their long JSON forms.

    Written here rather than taken from cfn-lint's decoder, which costs 0.8 s of imports on every stack start.
    """


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)

SUB_VARIABLE = re.compile(r"\$\{(?P<name>[^}!][^}]*)\}")


def load(path: Path) -> dict[str, Any]:
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    except (OSError, yaml.YAMLError) as error:
        raise TemplateError(f"cannot read the template {path}: {error}") from error


def resolve(value: Any, references: Mapping[str, Any], where: str = "") -> Any:
    """`value` with Ref, Fn::GetAtt and Fn::Sub replaced by their values from `references`."""
    if isinstance(value, list):
        return [resolve(item, references, where) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return _lookup(argument, references, where)
        if function == "Fn::GetAtt":
            return _lookup(".".join(argument), references, where)
        if function == "Fn::Sub":
            if not isinstance(argument, str):
                raise TemplateError(f"{where}: Fn::Sub with a variable map is not evaluated locally")
            return SUB_VARIABLE.sub(lambda match: str(_lookup(match["name"], references, where)), argument)
        if function.startswith("Fn::"):
            raise TemplateError(f"{where}: {function} is not evaluated by the local stack's provisioning")
    return {key: resolve(item, references, f"{where}.{key}" if where else key) for key, item in value.items()}


def _lookup(name: str, references: Mapping[str, Any], where: str) -> Any:
    if name not in references:
        raise TemplateError(
            f"{where}: the local stack has no value for {name!r} (known: {', '.join(sorted(references))})"
        )
    return references[name]
