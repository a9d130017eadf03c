"""DescribeEndpoint as AWS answers it.

moto answers `"DataCaptureConfig": {}` for an endpoint whose config has no data capture; AWS leaves
the member out, and when present its five members are required. SDK v3's `Endpoint.get` builds a
`DataCaptureConfigSummary` from that empty dict and fails validation. moto's other fields pass.
"""

from __future__ import annotations

from local_aws.core import api


def describe_endpoint(request: dict, context: api.Context) -> dict:
    answer = context.client("sagemaker").describe_endpoint(EndpointName=request["EndpointName"])
    answer.pop("ResponseMetadata", None)
    if not answer.get("DataCaptureConfig"):
        answer.pop("DataCaptureConfig", None)
    return {key: value for key, value in answer.items() if value is not None}


OPERATIONS: dict[str, api.Handler] = {"DescribeEndpoint": describe_endpoint}
