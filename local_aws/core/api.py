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

import dataclasses
import datetime as dt
import functools
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
    # The caller's account, as moto decides it from the request (`gateway.caller_account`): a handler acts
    # in it, as AWS acts in the account of the credentials. The stack's own account outside a request.
    account_id: str
    state_dir: Path  # the stack's state folder (.local/ by default): handlers keep their files here
    # What a process needs to use the stack (AWS_ENDPOINT_URL..., dummy keys, region): for the processes that
    # handlers start, such as a Lambda function's handler or a pipeline step.
    environment: Mapping[str, str] = field(default_factory=dict)
    # The account of the stack's own dummy keys (moto's default, or MOTO_ACCOUNT_ID): where the processes
    # started with `environment` act. Empty: the same as account_id.
    stack_account_id: str = ""

    def client(self, service: str):
        """A boto3 client for `service` on the moto server, acting in `account_id` (thread-safe, cached)."""
        return moto_client(self.moto_url, service, self.region, self.account_id)

    def in_account(self, account_id: str) -> Context:
        """This context acting in another account (an event's, a resource ARN's)."""
        stack_account_id = self.stack_account_id or self.account_id
        return dataclasses.replace(self, account_id=account_id, stack_account_id=stack_account_id)

    @property
    def in_stack_account(self) -> bool:
        return not self.stack_account_id or self.stack_account_id == self.account_id


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


def _name_account(account_id: str, request, **_) -> None:
    request.headers[ACCOUNT_HEADER] = account_id


def _describe(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"


# moto's documented server-mode header naming the account a request acts in. It outranks the access key
# and is outranked only by MOTO_ACCOUNT_ID in the server's environment (moto's docs, "Multi-account").
ACCOUNT_HEADER = "x-moto-account-id"

_clients: dict[tuple[str, str, str, str | None], Any] = {}
_clients_lock = threading.Lock()
_session: Any = None  # one botocore session for every cached client: each new one re-reads ~3 MB of JSON models


def moto_client(moto_url: str, service: str, region: str, account_id: str | None = None):
    """A cached boto3 client on the moto server, acting in `account_id` (None: the dummy keys' account).
    boto3 clients are thread-safe once built; building one is not (and costs ~50 ms), hence the lock and
    the cache. They share one session, whose loader reads each service model and the endpoint rules once
    (a session per client cost ~0.3 s of CPU each, a few seconds per stack start).

    The account travels as moto's account header rather than as credentials of that account: the header is
    in moto's recording too, so a restart replays the request into the same account, where a temporary
    key from STS would be unknown after the replay and land in the default account."""
    key = (moto_url, service, region, account_id)
    global _session
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                if _session is None:
                    _session = boto3.session.Session()
                client = _session.client(
                    service,
                    endpoint_url=moto_url,
                    region_name=region,
                    aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                    aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                    # moto answers unimplemented calls with 500: retrying only hides that.
                    config=Config(retries={"max_attempts": 1}),
                )
                if account_id:
                    client.meta.events.register("before-sign", functools.partial(_name_account, account_id))
                _clients[key] = client
    return client
