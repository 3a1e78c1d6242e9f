"""The packaged template's values made concrete, and IAM's allow/deny on one request.

`Resolver` turns the template's intrinsics (`Ref`, `Fn::GetAtt ... Arn`, `Fn::Sub`) into the
strings CloudFormation would produce, given what AWS would have named (the KMS key, the
secret, the WebSocket API id: here, moto's and the test's). `allows(statements, request)`
is IAM's identity-policy rule for Allow statements: an action pattern and a resource pattern
match (`*` and `?` wildcards, actions case-insensitive) and every condition holds. A
condition operator this file does not know fails the test rather than being skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.deploy.aws_calls import ACCOUNT, REGION, IamRequest, table_arn

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "benchmark-scheduler",
    "AWS::NoValue": None,
}


@dataclass
class Resolver:
    template: dict[str, Any]
    parameters: dict[str, str]
    physical: dict[str, str]  # logical id → its Ref value, for what AWS names (key, secret, api)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            return self.attribute(logical, attribute)
        if set(value) == {"Fn::Sub"}:
            return self.sub(value["Fn::Sub"])
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(self.resolve(parts))
        return {k: self.resolve(v) for k, v in value.items()}

    def sub(self, text: str) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if "." in name:
                logical, attribute = name.split(".", 1)
                return self.attribute(logical, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        resource = self.template["Resources"][name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            return self.resolve(props["TableName"])
        if kind == "AWS::Serverless::Function":
            return self.resolve(props["FunctionName"])
        raise KeyError(f"no Ref value for {name} ({kind}): add it to `physical`")

    def attribute(self, logical: str, attribute: str) -> str:
        resource = self.template["Resources"][logical]
        kind, props = resource["Type"], resource.get("Properties", {})
        if attribute != "Arn":
            raise KeyError(f"{logical}.{attribute}")
        if kind == "AWS::DynamoDB::Table":
            return table_arn(self.ref(logical))
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.ref(logical)}"
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.resolve(props.get('QueueName', logical))}"
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.ref(logical)}"
        raise KeyError(f"no Arn for {logical} ({kind})")


# --- evaluation ------------------------------------------------------------------------------


def _matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, expected: Any, request: IamRequest) -> bool:
    actual = request.key(key)
    expected = _listed(expected)
    if operator == "Null":
        return (actual is None) == (str(expected[0]).lower() == "true")
    if operator == "StringEquals":
        return actual is not None and any(actual == e for e in expected)
    if operator == "ForAllValues:StringEquals":
        return all(value in expected for value in (actual or ()))
    raise AssertionError(f"condition operator {operator} is not evaluated by tests/deploy/iam_policy.py")


def statement_allows(statement: dict[str, Any], request: IamRequest) -> bool:
    assert statement["Effect"] == "Allow" and not {"NotAction", "NotResource"} & set(statement), statement
    if not any(_matches(a, request.action, case_sensitive=False) for a in _listed(statement["Action"])):
        return False
    if not any(_matches(r, request.resource) for r in _listed(statement["Resource"])):
        return False
    return all(
        _condition_holds(operator, key, expected, request)
        for operator, pairs in statement.get("Condition", {}).items()
        for key, expected in pairs.items()
    )


def allows(statements: list[dict[str, Any]], request: IamRequest) -> bool:
    return any(statement_allows(s, request) for s in statements)
