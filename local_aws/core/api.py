"""Local overrides of SageMaker API operations: the gateway answers these itself instead of moto.

moto stores some things it never runs (pipeline executions) and gets some semantics wrong
(UpdateModelPackage drops fields, emits no event). A module fixes an operation by registering a
handler; the gateway (`local_aws.core.gateway`) answers every registered operation locally and
forwards everything else to moto unchanged.

    from local_aws.core import api

    def describe_pipeline_execution(request: dict, context: api.Context) -> dict:
        ...  # request: the operation's JSON input, exactly as boto3 sent it
        raise api.LocalApiError("ResourceNotFound", "Pipeline execution X does not exist.", 400)

    api.register("DescribePipelineExecution", describe_pipeline_execution)

A handler returns the operation's JSON output as a dict (datetimes are sent as epoch seconds, as
the AWS JSON 1.1 protocol does). It raises `LocalApiError` for an AWS-style error; a botocore
`ClientError` from a call to moto is passed back to the client unchanged; any other exception is
logged and answered as a 500 InternalFailure.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# moto accepts any credentials; these never leave the machine.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - not a secret: moto's conventional dummy value


class LocalApiError(Exception):
    """An AWS JSON 1.1 error answer: HTTP `status`, body `{"__type": code, "message": message}`."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


@dataclass(frozen=True)
class Context:
    """What a handler needs to know about the stack it runs in."""

    moto_url: str  # the moto server, e.g. http://127.0.0.1:40123
    region: str  # the region the client signed its request for
    account_id: str  # moto's account for this stack
    state_dir: Path  # the stack's state folder (.local/ by default): handlers keep their files here
    # What a process needs to use the stack (AWS_ENDPOINT_URL..., dummy keys, region): for the processes that
    # handlers start, such as a Lambda function's handler or a pipeline step.
    environment: Mapping[str, str] = field(default_factory=dict)

    def client(self, service: str):
        """A boto3 client for `service` on the moto server (thread-safe, cached per process)."""
        return moto_client(self.moto_url, service, self.region)


Handler = Callable[[dict[str, Any], Context], dict[str, Any]]

_handlers: dict[str, Handler] = {}
_handlers_lock = threading.Lock()


def register(operation: str, handler: Handler, *, replace: bool = False) -> None:
    """Answer `operation` with `handler`: a SageMaker operation by its name ("StartPipelineExecution"),
    another service's by its full X-Amz-Target ("AWSEvents.TestEventPattern").

    Registering an operation twice is an error unless `replace=True`: two modules silently
    fighting over one operation would be a bug that is hard to see.
    """
    with _handlers_lock:
        existing = _handlers.get(operation)
        if existing is not None and existing is not handler and not replace:
            raise ValueError(
                f"SageMaker operation {operation} already has a local handler ({_describe(existing)}); "
                "pass replace=True to override it"
            )
        _handlers[operation] = handler


def unregister(operation: str) -> None:
    with _handlers_lock:
        _handlers.pop(operation, None)


def handler_for(operation: str) -> Handler | None:
    return _handlers.get(operation)


def registered_operations() -> list[str]:
    return sorted(_handlers)


def to_json(document: dict[str, Any]) -> bytes:
    """Serialise a handler's answer the way AWS JSON 1.1 does (timestamps as epoch seconds)."""
    return json.dumps(document, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # naive datetimes are UTC throughout this stack, as in moto
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _describe(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"


_clients: dict[tuple[str, str, str], Any] = {}
_clients_lock = threading.Lock()


def moto_client(moto_url: str, service: str, region: str):
    """A cached boto3 client on the moto server. boto3 clients are thread-safe once built;
    building one is not (and costs ~50 ms), hence the lock and the cache."""
    key = (moto_url, service, region)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                client = boto3.session.Session().client(
                    service,
                    endpoint_url=moto_url,
                    region_name=region,
                    aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                    aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                    # moto answers unimplemented calls with 500: retrying only hides that.
                    config=Config(retries={"max_attempts": 1}),
                )
                _clients[key] = client
    return client
