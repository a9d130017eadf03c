"""The policy evaluator against the IAM User Guide's own examples and rules, so the template tests stand on it.

Each case cites the rule it checks ("Policy evaluation logic", "Condition operators", "Conditions with
multiple context keys or values", "Single-valued vs. multivalued context keys").
"""

from __future__ import annotations

import pytest

from .policy_evaluator import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, Unsupported, conditions_hold, decide


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_no_statement_applies_is_an_implicit_deny_and_an_explicit_deny_beats_any_allow():
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
    assert decide(Request("ec2:RunInstances"), [policy(allow)]) == IMPLICIT_DENY
    assert decide(Request("s3:GetObject", "arn:aws:s3:::b/k"), [policy(allow)]) == ALLOW
    assert decide(Request("s3:DeleteObject", "arn:aws:s3:::b/k"), [policy(allow), policy(deny)]) == EXPLICIT_DENY


def test_actions_are_case_insensitive_and_wildcards_work_in_action_and_resource():
    statement = {"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "arn:aws:iam::123456789012:user/*"}
    assert decide(Request("IAM:CreateAccessKey", "arn:aws:iam::123456789012:user/Bob"), [policy(statement)]) == ALLOW
    assert decide(Request("iam:CreateUser", "arn:aws:iam::123456789012:user/Bob"), [policy(statement)]) != ALLOW
    assert decide(Request("iam:CreateAccessKey", "arn:aws:iam::111122223333:user/Bob"), [policy(statement)]) != ALLOW


def test_a_resource_wildcard_never_spans_an_arn_component():
    statement = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::*:role/*"}
    assert decide(Request("iam:PassRole", "arn:aws:iam::123456789012:role/x"), [policy(statement)]) == ALLOW
    assert decide(Request("iam:PassRole", "arn:aws:s3:::role/x"), [policy(statement)]) == IMPLICIT_DENY


def test_not_resource_with_deny_denies_everything_outside_the_list():
    # "NotResource" example: deny everything but the listed resources.
    deny = {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::HRBucket/Payroll/*"]}
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    assert decide(Request("s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/a"), [policy(allow, deny)]) == ALLOW
    assert decide(Request("s3:GetObject", "arn:aws:s3:::HRBucket/Other/a"), [policy(allow, deny)]) == EXPLICIT_DENY


def test_values_of_one_key_are_ored_keys_and_operators_are_anded():
    block = {"StringEquals": {"aws:PrincipalTag/job-category": ["iamuser-admin", "iamuser-read-only"]}}
    assert conditions_hold(block, {"aws:PrincipalTag/job-category": "iamuser-read-only"})
    assert not conditions_hold(block, {"aws:PrincipalTag/job-category": "other"})
    both = {"StringEquals": {"aws:PrincipalTag/team": "a", "aws:PrincipalTag/role": "b"}, "Bool": {"aws:X": "true"}}
    assert conditions_hold(both, {"aws:PrincipalTag/team": "a", "aws:PrincipalTag/role": "b", "aws:X": "true"})
    assert not conditions_hold(both, {"aws:PrincipalTag/team": "a", "aws:PrincipalTag/role": "b", "aws:X": "false"})


def test_negated_operators_are_a_nor_over_the_values_and_true_for_a_missing_key():
    block = {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}}
    assert conditions_hold(block, {"aws:RequestedRegion": "us-east-1"})
    assert not conditions_hold(block, {"aws:RequestedRegion": "eu-central-1"})
    assert conditions_hold(block, {})  # "If the key ... is not present ... the condition is true"
    assert not conditions_hold({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, {})


def test_string_like_and_arn_like_wildcards():
    assert conditions_hold({"StringLike": {"s3:prefix": ["home/*"]}}, {"s3:prefix": "home/bob/x"})
    assert not conditions_hold({"StringLike": {"s3:prefix": ["home/*"]}}, {"s3:prefix": "work/x"})
    assert conditions_hold({"StringLike": {"k": "a?c"}}, {"k": "abc"})
    assert not conditions_hold({"StringLike": {"k": "a[b]c"}}, {"k": "abc"})  # no character classes in IAM
    # ArnEquals example with aws:SourceArn, and ArnLike per component.
    arn = "arn:aws:sns:us-east-1:123456789012:TOPIC-ID"
    assert conditions_hold({"ArnEquals": {"aws:SourceArn": arn}}, {"aws:SourceArn": arn})
    assert conditions_hold({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}}, {"aws:SourceArn": arn})
    assert not conditions_hold({"ArnLike": {"aws:SourceArn": "arn:aws:sqs:*:*:*"}}, {"aws:SourceArn": arn})


def test_null_tests_presence_and_if_exists_passes_a_missing_key():
    # The documented example: Null aws:TokenIssueTime "true" is true for long-term credentials (no key).
    assert conditions_hold({"Null": {"aws:TokenIssueTime": "true"}}, {})
    assert not conditions_hold({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": "2024-01-01"})
    assert conditions_hold({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": "2024-01-01"})
    assert conditions_hold({"StringEqualsIfExists": {"ec2:InstanceType": "t2.micro"}}, {})
    assert not conditions_hold({"StringEqualsIfExists": {"ec2:InstanceType": "t2.micro"}}, {"ec2:InstanceType": "m5"})


def test_bool_and_numeric_as_in_the_tls_examples():
    assert conditions_hold({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"})
    assert not conditions_hold({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"})
    assert conditions_hold({"NumericLessThan": {"s3:TlsVersion": "1.2"}}, {"s3:TlsVersion": "1.1"})
    assert not conditions_hold({"NumericLessThan": {"s3:TlsVersion": "1.2"}}, {"s3:TlsVersion": "1.3"})


def test_set_operators_on_multivalued_keys():
    # The aws:TagKeys examples: ForAllValues is true for an absent key, ForAnyValue false.
    allowed_keys = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert conditions_hold(allowed_keys, {"aws:TagKeys": ["environment"]})
    assert not conditions_hold(allowed_keys, {"aws:TagKeys": ["environment", "owner"]})
    assert conditions_hold(allowed_keys, {})
    any_key = {"ForAnyValue:StringLike": {"aws:TagKeys": ["env*"]}}
    assert conditions_hold(any_key, {"aws:TagKeys": ["owner", "environment"]})
    assert not conditions_hold(any_key, {"aws:TagKeys": ["owner"]})
    assert not conditions_hold(any_key, {})


def test_condition_keys_are_case_insensitive():
    assert conditions_hold({"StringEquals": {"AWS:SourceAccount": "1"}}, {"aws:sourceaccount": "1"})


def test_principal_elements_of_resource_policies():
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/gitlab.example.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    )
    assert (
        decide(
            Request(
                "sts:AssumeRoleWithWebIdentity",
                principal={"Federated": "arn:aws:iam::1:oidc-provider/gitlab.example.com"},
            ),
            [trust],
        )
        == ALLOW
    )
    assert (
        decide(
            Request("sts:AssumeRoleWithWebIdentity", principal={"Federated": "arn:aws:iam::1:oidc-provider/other"}),
            [trust],
        )
        == IMPLICIT_DENY
    )
    everyone = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"})
    assert decide(
        Request("s3:GetObject", "arn:aws:s3:::b/k", principal={"AWS": "arn:aws:iam::1:role/r"}), [everyone]
    ) == (EXPLICIT_DENY)


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "x"}}},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}/*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:TagKeys": "a"}}},
    ],
    ids=["unknown-operator", "policy-variable", "multivalued-without-set-operator"],
)
def test_what_is_not_modelled_is_refused_not_guessed(statement):
    with pytest.raises(Unsupported):
        decide(Request("s3:GetObject", "arn:aws:s3:::b/k", {"aws:TagKeys": ["a", "b"]}), [policy(statement)])
