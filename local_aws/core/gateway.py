"""The gateway: one loopback HTTP server in front of moto for the SageMaker API and runtime.

Routing, first match wins:
- `GET /__local_stack/health`: readiness probe (JSON: status, ports, local operations);
- `POST /endpoints/<name>/invocations`: the SageMaker runtime (`local_aws.sagemaker_runtime.responses`);
- `X-Amz-Target: SageMaker.<Operation>` (or another service's target, e.g. `AWSEvents.TestEventPattern`)
  with a local handler (`local_aws.core.api`): answered here;
- anything else: forwarded to moto unchanged (method, path, headers, body; moto's status,
  headers and body back).

Accounts: every request acts in the caller's account, decided from its credentials exactly as moto decides
it (`caller_account`: MOTO_ACCOUNT_ID, else moto's `x-moto-account-id` header, else the account of the
access key, e.g. an STS AssumeRole key acts in the role's account, else moto's default). Local handlers and
the runtime get it in their `api.Context`; forwarded requests carry it to moto in moto's account header.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import urllib3

from local_aws.core import api
from local_aws.sagemaker_runtime import capture
from local_aws.sagemaker_runtime import responses as runtime_responses
from local_aws.sagemaker_runtime.models import SageMakerRuntime

log = logging.getLogger(__name__)

HEALTH_PATH = "/__local_stack/health"
INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
CREDENTIAL_REGION = re.compile(r"Credential=[^/,]+/\d{8}/(?P<region>[a-z0-9-]+)/")
AWS_JSON = "application/x-amz-json-1.1"
# Hop-by-hop headers belong to one connection, never to the forwarded request or answer.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "expect"}


class Gateway(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, moto_url: str, region: str, account_id: str, state_dir: Path, port: int = 0):
        self.moto_url = moto_url.rstrip("/")
        self.region = region
        self.account_id = account_id
        self.state_dir = state_dir
        self.runtime = SageMakerRuntime(account_id)
        # Captured requests go to moto's S3 over HTTP (recorded like any write) from the capture's own thread.
        self.runtime.capture = capture.install(
            capture.DataCapture(lambda: api.moto_client(self.moto_url, "s3", self.region))
        )
        capture.register()
        self.environment: dict[str, str] = {}  # the stack's client environment, set by the server once known
        self.last_request_at = time.monotonic()  # when a request last arrived (for the idle warm-up)
        # Enough pooled connections for every gateway thread that forwards at once.
        self.moto = urllib3.PoolManager(maxsize=32, retries=False)
        super().__init__(("127.0.0.1", port), GatewayHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def context(self, region: str, account_id: str | None = None) -> api.Context:
        return api.Context(
            moto_url=self.moto_url,
            region=region,
            account_id=account_id or self.account_id,
            state_dir=self.state_dir,
            environment=self.environment,
            stack_account_id=self.account_id,
        )


def caller_account(headers) -> str:
    """The account moto acts in for a request with these headers.

    moto's own decision (`BaseResponse.get_current_account`, which ends in `moto.iam.models.get_account_id_from`
    on the request's access key), never a copy of it: the gateway and moto must never disagree on an account.
    moto runs in this process, so its IAM and STS state (the keys it handed out) is the one it answers with."""
    from moto.core.responses import BaseResponse

    responder = BaseResponse(service_name="sagemaker")
    responder.headers = headers
    responder.querystring = {}
    return responder.get_current_account()


# Registry reads that name a package or group by ARN are answered in the ARN's account: the reads the tooling
# account grants prod's roles through the group's resource policy (cloudformation/project.yml). moto has no
# resource policies (no PutModelPackageGroupPolicy), so none is evaluated here: the policy matrix
# (tests/cloudformation/test_prod_account_matrix.py) decides who may read.
CROSS_ACCOUNT_READS = {
    "DescribeModelPackage": "ModelPackageName",
    "DescribeModelPackageGroup": "ModelPackageGroupName",
    "ListModelPackages": "ModelPackageGroupName",
}


def resource_account(operation: str, body: bytes) -> str | None:
    """The account a cross-account registry read names in its ARN, or None."""
    member = CROSS_ACCOUNT_READS.get(operation)
    if member is None:
        return None
    try:
        value = json.loads(body or b"{}").get(member) or ""
    except (ValueError, AttributeError):
        return None  # moto answers the malformed request itself
    parts = value.split(":") if isinstance(value, str) else []
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses its connections
    # Headers and body leave in two writes: with Nagle's algorithm on, the second waits for the
    # client's delayed ACK, 40 ms a request.
    disable_nagle_algorithm = True
    server: Gateway

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _handle(self) -> None:
        self.server.last_request_at = time.monotonic()
        try:
            body = self._read_body()
            path = urlsplit(self.path).path
            if path == HEALTH_PATH and self.command == "GET":
                return self._health()
            invocation = INVOCATIONS.match(path)
            if invocation and self.command == "POST":
                return self._invoke(unquote(invocation["name"]), body)
            target = self.headers.get("X-Amz-Target", "")
            operation = target.removeprefix("SageMaker.") if target.startswith("SageMaker.") else target
            handler = api.handler_for(operation) if operation else None
            if handler is not None:
                return self._local_operation(operation, handler, body)
            self._forward(body, resource_account(operation, body) or self._account_if_not_the_stacks())
        except (BrokenPipeError, ConnectionResetError):
            log.info("client closed the connection during %s %s", self.command, self.path)
        except Exception as error:  # noqa: BLE001 - answer 500 rather than drop the connection
            log.exception("gateway failed on %s %s", self.command, self.path)
            self.close_connection = True  # the request may be half read: its rest is no next request
            self._send(
                500, {"Content-Type": AWS_JSON}, api.to_json({"__type": "InternalFailure", "message": str(error)})
            )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _region(self) -> str:
        match = CREDENTIAL_REGION.search(self.headers.get("Authorization", ""))
        return match["region"] if match else self.server.region

    def _account(self) -> str:
        return caller_account(self.headers)

    def _account_if_not_the_stacks(self) -> str | None:
        account_id = self._account()
        return account_id if account_id != self.server.account_id else None

    def _health(self) -> None:
        document = {
            "status": "ready",
            "gateway": self.server.url,
            "moto": self.server.moto_url,
            "local_operations": api.registered_operations(),
        }
        self._send(200, {"Content-Type": "application/json"}, json.dumps(document).encode())

    def _invoke(self, endpoint_name: str, body: bytes) -> None:
        status, headers, answer = runtime_responses.invoke_endpoint(
            self.server.runtime, endpoint_name, body, self.headers, self._region(), account_id=self._account()
        )
        self._send(status, headers, answer)

    def _local_operation(self, operation: str, handler: api.Handler, body: bytes) -> None:
        from botocore.exceptions import ClientError

        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the request body is not a JSON object")
        except ValueError as error:
            return self._aws_json(400, {"__type": "SerializationException", "message": f"{operation}: {error}"})
        try:
            answer = handler(request, self.server.context(self._region(), self._account()))
        except api.LocalApiError as error:
            return self._aws_json(error.status, error.body())
        except ClientError as error:  # moto's answer to a call the handler made: pass it on
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            details = error.response.get("Error", {})
            return self._aws_json(
                status, {"__type": details.get("Code", "ValidationException"), "message": details.get("Message", "")}
            )
        except Exception as error:  # noqa: BLE001 - a handler bug must reach the client, and the log
            log.exception("local handler for SageMaker.%s failed", operation)
            message = (
                f"local handler for {operation} failed: {type(error).__name__}: {error} (see the stack's server log)"
            )
            return self._aws_json(500, {"__type": "InternalFailure", "message": message})
        self._aws_json(200, answer)

    def _aws_json(self, status: int, document: dict) -> None:
        self._send(status, {"Content-Type": AWS_JSON, "x-amzn-RequestId": str(uuid.uuid4())}, api.to_json(document))

    def _forward(self, body: bytes, account_id: str | None = None) -> None:
        """To moto unchanged; with `account_id`, acting in that account (moto's account header)."""
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        if account_id is not None:
            # Named, not left to the access key: a cross-account read's account is not the key's, and moto's
            # recording replays a named account into the same account after a restart.
            headers = {name: value for name, value in headers.items() if name.lower() != api.ACCOUNT_HEADER}
            headers[api.ACCOUNT_HEADER] = account_id
        if "content-length" in {name.lower() for name in headers} or body:
            headers = {name: value for name, value in headers.items() if name.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
        answer = self.server.moto.urlopen(
            self.command,
            self.server.moto_url + self.path,
            body=body if body or self.command in ("POST", "PUT", "PATCH") else None,
            headers=headers,
            redirect=False,
            preload_content=True,
            decode_content=False,  # forward compressed bodies as they are
            timeout=urllib3.Timeout(connect=5, read=600),
        )
        # send_response() writes its own Server and Date headers.
        skip = HOP_BY_HOP | {"server", "date"}
        answer_headers = {name: value for name, value in answer.headers.items() if name.lower() not in skip}
        self._send(answer.status, answer_headers, answer.data or b"", forwarded=True)

    def _send(self, status: int, headers: dict[str, str], body: bytes, forwarded: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() == "content-length" and not (forwarded and self.command == "HEAD"):
                continue  # recomputed below; a HEAD answer keeps moto's length of the object
            self.send_header(name, value)
        if not (forwarded and self.command == "HEAD"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        log.debug("%s - %s", self.address_string(), format % args)
