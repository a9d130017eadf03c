"""The project template's policies as IAM would see them: intrinsic functions resolved with sample values.

Only what the template's policies use is resolved (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Select,
Fn::Split, and Conditions of Fn::Equals/Fn::Not); anything else raises, so a new construct is noticed.
Resources get stable sample ARNs named after their logical id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from cfnlint.decode import cfn_yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "project.yml"
ACCOUNT, REGION = "123456789012", "eu-west-1"
HOST = "gitlab.example.com"
PARAMETERS = {
    "SageMakerProjectName": "abalone",
    "SageMakerProjectId": "p-abc123",
    "GitLabServerUrl": f"https://{HOST}",
    "GitLabNamespaceId": "42",
    "GitLabNamespacePath": "ml-team/abalone",
    "AssetsBucket": "template-assets",
    "SeedFunctionKey": "assets/seed_code.zip",
    "TriggerFunctionKey": "assets/model_trigger.zip",
    "AlertGateFunctionKey": "assets/alert_gate.zip",
    "ModelBuildSeedKey": "assets/model-build.zip",
    "ModelDeploySeedKey": "assets/model-deploy.zip",
}
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": "abalone"}
BUCKET = "abalone-artifacts"
NO_VALUE = object()


class Rendered:
    def __init__(self, parameters: Mapping[str, str] | None = None):
        self.template_path = TEMPLATE
        self.template = cfn_yaml.load(str(TEMPLATE))
        defaults = {name: p["Default"] for name, p in self.template["Parameters"].items() if "Default" in p}
        self.parameters = {**defaults, **PARAMETERS, **(parameters or {})}
        self.conditions = {name: self.resolve(c) for name, c in self.template["Conditions"].items()}

    # -- resources as IAM sees them ------------------------------------------------------------------
    def arn(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        return {
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{logical_id}",
            "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{ACCOUNT}:policy/{logical_id}",
            "AWS::IAM::OIDCProvider": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{BUCKET}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical_id}",
        }.get(kind, f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical_id}")

    def ref(self, name: str) -> str:
        if name == "AWS::NoValue":  # removes the property or list item it stands in (resolve drops it)
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.template["Resources"][name]["Type"]
        if kind == "AWS::S3::Bucket":
            return BUCKET
        if kind in ("AWS::IAM::Role",):
            return name
        return self.arn(name)

    def trust_policy(self, role: str) -> dict:
        return self.resolve(self.template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"])

    def identity_policies(self, role: str) -> list[dict]:
        properties = self.template["Resources"][role]["Properties"]
        documents = [self.resolve(p["PolicyDocument"]) for p in properties.get("Policies", [])]
        for managed in properties.get("ManagedPolicyArns", []):
            (logical_id,) = managed.values()  # {"Ref": X}
            documents.append(self.resolve(self.template["Resources"][logical_id]["Properties"]["PolicyDocument"]))
        for resource in self.template["Resources"].values():  # policies that attach themselves (Roles: [!Ref X])
            if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and {"Ref": role} in resource[
                "Properties"
            ].get("Roles", []):
                documents.append(self.resolve(resource["Properties"]["PolicyDocument"]))
        return documents

    def managed_policy(self, logical_id: str) -> dict:
        return self.resolve(self.template["Resources"][logical_id]["Properties"]["PolicyDocument"])

    def bucket_policy(self) -> dict:
        return self.resolve(self.template["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"])

    # -- intrinsic functions -------------------------------------------------------------------------
    def resolve(self, node):
        if isinstance(node, Mapping):
            if len(node) == 1:
                ((key, value),) = node.items()
                if key == "Ref":
                    return self.ref(value)
                if key.startswith("Fn::") or key == "Condition":
                    return self._function(key, value)
            resolved = {str(k): self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(node, list):
            return [v for v in (self.resolve(v) for v in node) if v is not NO_VALUE]
        return node

    def _function(self, name: str, value):
        if name == "Fn::GetAtt":
            logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
            if attribute != "Arn":  # no policy reads other attributes: a stand-in value keeps them apart
                return f"{logical_id}.{attribute}"
            return self.arn(logical_id)
        if name == "Fn::Sub":
            text, extra = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))
            rendered = re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_variable(m.group(1), extra), text)
            if rendered.lstrip().startswith("{"):  # a JSON policy document; an input template has <placeholders>
                try:
                    return json.loads(rendered)
                except ValueError:
                    return rendered
            return rendered
        if name == "Fn::If":
            condition, when_true, when_false = value
            return self.resolve(when_true if self.conditions[condition] else when_false)
        if name == "Fn::Select":
            index, items = value
            return self.resolve(items)[int(index)]
        if name == "Fn::Split":
            separator, text = value
            return self.resolve(text).split(separator)
        if name == "Fn::Equals":
            left, right = self.resolve(value)
            return left == right
        if name == "Fn::Not":
            return not self.resolve(value[0])
        if name == "Condition":
            return self.conditions[value]
        raise NotImplementedError(name)

    def _sub_variable(self, name: str, extra: Mapping[str, str]) -> str:
        if name in extra:
            return extra[name]
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self._function("Fn::GetAtt", [logical_id, attribute])
        return self.ref(name)
