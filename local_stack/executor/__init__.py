"""The local pipeline executor: runs the stored pipeline definition JSON, the exact document SageMaker
would get, with local Python, xgboost and moto. Importing it registers its API operations with the
gateway (`local_stack.api`)."""

from local_stack import api
from local_stack.executor.handlers import OPERATIONS

for _operation, _handler in OPERATIONS.items():
    api.register(_operation, _handler)
