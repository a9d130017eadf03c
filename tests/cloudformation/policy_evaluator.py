"""A small IAM policy evaluator: does this set of policies allow this request?

Why hand-written: the tests must evaluate the template's rendered trust and permission policies, not
match strings, and no maintained library does that offline. moto's `moto.iam.access_control` knows only
StringEquals; the PyPI packages looked at either call AWS's own simulator (sibyl-aws, aws-why: they need
an account) or lint and expand policies without deciding requests (parliament, policyuniverse, iam-ape).
So this module implements exactly what the project template uses, following the IAM User Guide
("Policy evaluation logic", "IAM JSON policy elements: Condition operators", "Conditions with multiple
context keys or values"), and refuses anything else instead of guessing:

- Effect Allow/Deny; an explicit Deny in any policy wins, then any Allow, else the implicit deny.
  Identity and resource policies of one account are simply pooled (either may allow).
- Action/NotAction (case-insensitive, `*` and `?`), Resource/NotResource (ARN components matched one
  by one, as ArnLike does), Principal/NotPrincipal for resource policies (trust and bucket policies).
- Condition: operators AND, keys AND, values OR (NOR for negated operators). A key missing from the
  request makes a positive operator false and a negated one true; `...IfExists` is true when it is
  missing; `Null` tests presence. `ForAnyValue:`/`ForAllValues:` over multi-valued keys (ForAllValues
  is true for a missing key, ForAnyValue false).
- Operators: String(Not)Equals, String(Not)EqualsIgnoreCase, String(Not)Like, Arn(Not)Equals,
  Arn(Not)Like, Bool, Null, Numeric{Equals,NotEquals,LessThan,LessThanEquals,GreaterThan,GreaterThanEquals}.

- Across accounts (`decide_across_accounts`): a principal of one account acting on a resource of another
  needs an Allow in its identity policies AND in the resource's policy (bucket, key, model package group),
  and a Deny in either wins. A resource policy's account principal (`arn:aws:iam::<id>:root` or `<id>`)
  matches every principal of that account.

Not modelled (the template uses none of it): policy variables, permissions boundaries, SCPs, session
policies, KMS grants. A policy using them raises `Unsupported`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"

ContextValue = str | Sequence[str]


class Unsupported(ValueError):
    """The policy uses something this evaluator does not implement: extend it rather than guess."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str = "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    # Who asks, for Principal elements: {"AWS": role ARN}, {"Federated": provider ARN}, {"Service": ...}.
    principal: Mapping[str, str] = field(default_factory=dict)


def decide(request: Request, policies: Iterable[Mapping]) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one request against every policy that applies to it."""
    allowed = False
    for policy in policies:
        for statement in _statements(policy):
            if not _applies(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return EXPLICIT_DENY
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def decide_across_accounts(
    request: Request, identity_policies: Iterable[Mapping], resource_policies: Iterable[Mapping]
) -> str:
    """A request of a principal in one account on a resource in another: both sides must allow it.

    For one account use `decide` with both kinds pooled: there the account principal of a resource policy
    delegates to identity policies, which this function does not model.
    """
    identity, resource = decide(request, identity_policies), decide(request, resource_policies)
    if EXPLICIT_DENY in (identity, resource):
        return EXPLICIT_DENY
    return ALLOW if identity == resource == ALLOW else IMPLICIT_DENY


def allowed(request: Request, policies: Iterable[Mapping]) -> bool:
    return decide(request, policies) == ALLOW


# -- statements ----------------------------------------------------------------------------------
def _statements(policy: Mapping) -> list[Mapping]:
    statements = policy["Statement"]
    statements = [statements] if isinstance(statements, Mapping) else list(statements)
    for statement in statements:
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise Unsupported(f"statement {statement.get('Sid')!r}: Effect must be Allow or Deny")
        if "${" in repr(statement):
            raise Unsupported(f"statement {statement.get('Sid')!r}: policy variables are not modelled")
    return statements


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: Mapping, request: Request) -> bool:
    return (
        _matches_element(statement, "Action", request.action, _action_matches)
        and _matches_element(statement, "Resource", request.resource, _arn_matches, default=True)
        and _principal_matches(statement, request.principal)
        and conditions_hold(statement.get("Condition", {}), request.context)
    )


def _matches_element(statement, name, value, match, default=False) -> bool:
    if name in statement:
        return any(match(pattern, value) for pattern in _listed(statement[name]))
    if "Not" + name in statement:
        return not any(match(pattern, value) for pattern in _listed(statement["Not" + name]))
    if default:  # trust policies have no Resource: the role itself is the resource
        return True
    raise Unsupported(f"statement {statement.get('Sid')!r} has neither {name} nor Not{name}")


def _action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern.lower(), action.lower())


def _principal_matches(statement: Mapping, principal: Mapping[str, str]) -> bool:
    if "Principal" in statement:
        return _principal_in(statement["Principal"], principal)
    if "NotPrincipal" in statement:
        return not _principal_in(statement["NotPrincipal"], principal)
    return True  # an identity policy: it applies to its own principal


def _principal_in(element, principal: Mapping[str, str]) -> bool:
    if element == "*":
        return True
    for kind, names in element.items():
        if kind not in ("AWS", "Federated", "Service"):
            raise Unsupported(f"principal type {kind!r}")
        asking = principal.get(kind)
        if asking is not None and any(_principal_named(name, kind, asking) for name in _listed(names)):
            return True
    return False


def _principal_named(name: str, kind: str, asking: str) -> bool:
    if name == "*" or name == asking:
        return True
    if kind != "AWS" or not asking.startswith("arn:"):
        return False
    # An account principal names every principal of that account (IAM User Guide, "AWS account principals").
    account = asking.split(":")[4]
    return bool(account) and name in (account, f"arn:{asking.split(':')[1]}:iam::{account}:root")


# -- matching ------------------------------------------------------------------------------------
def _glob(pattern: str, value: str) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` one character, nothing else special (not
    fnmatch: it would read `[...]` as a character class, which IAM does not)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: the six colon-separated components are compared one by one, so a wildcard never
    spans a component (arn:aws:iam::*:role/* does not match an S3 ARN). `*` alone matches anything."""
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(_glob(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise Unsupported(f"{text!r} is not a number") from None


_BASE_OPERATORS = {
    "StringEquals": lambda policy, value: policy == value,
    "StringEqualsIgnoreCase": lambda policy, value: policy.lower() == value.lower(),
    "StringLike": _glob,
    "ArnEquals": lambda policy, value: policy == value,
    "ArnLike": _arn_matches,
    "Bool": lambda policy, value: policy.lower() == value.lower(),
    "NumericEquals": lambda policy, value: _number(value) == _number(policy),
    "NumericLessThan": lambda policy, value: _number(value) < _number(policy),
    "NumericLessThanEquals": lambda policy, value: _number(value) <= _number(policy),
    "NumericGreaterThan": lambda policy, value: _number(value) > _number(policy),
    "NumericGreaterThanEquals": lambda policy, value: _number(value) >= _number(policy),
}
# Negated operators: the same comparison, the result inverted (and NOR over the policy's values).
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def conditions_hold(block: Mapping, context: Mapping[str, ContextValue]) -> bool:
    """Whether a statement's Condition block holds for a request context (keys are case-insensitive)."""
    lowered = {key.lower(): value for key, value in context.items()}
    for operator, tests in block.items():
        for key, policy_values in tests.items():
            if not _condition_holds(operator, lowered.get(key.lower()), [str(v) for v in _listed(policy_values)]):
                return False
    return True


def _condition_holds(operator: str, present: ContextValue | None, policy_values: list[str]) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if operator == "Null":  # "true": the key must be absent; "false": present
        return any((present is None) == (v.lower() == "true") for v in policy_values)
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    negated = name in _NEGATED
    compare = _BASE_OPERATORS.get(_NEGATED.get(name, name))
    if compare is None or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise Unsupported(f"condition operator {operator!r}")

    def matches(value: str) -> bool:
        hit = any(compare(policy, value) for policy in policy_values)
        return not hit if negated else hit

    if present is None:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated
    values = [present] if isinstance(present, str) else list(present)
    if qualifier == "ForAnyValue":
        return any(matches(v) for v in values)
    if qualifier == "ForAllValues":
        return all(matches(v) for v in values)
    if len(values) != 1:
        raise Unsupported(f"{operator} on a multi-valued key: use ForAnyValue/ForAllValues")
    return matches(values[0])
