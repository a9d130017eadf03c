"""CloudFormation on the local stack, for what moto's CloudFormation cannot do with the project template.

moto crashes building `cloudformation/project.yml`, and its Lambda runs no code without Docker. Until the
template can be provisioned locally, `event_routing` puts the template's own EventBridge rules and the Lambda
functions they target into moto, read from the template itself (never a copy), so an event emitted on the
local stack reaches the same handler, through the same rule, as on AWS.

Importing the package also makes moto's stack updates honour resources' Conditions (`conditions`).
"""

from local_aws.cloudformation import conditions  # noqa: F401 - installs the update fix before any stack is made
