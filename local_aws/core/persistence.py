"""moto keeps its state in memory; this keeps the local stack's AWS state across restarts and crashes.

Design: a journal of the requests that changed something, replayed into the next start.

- `RecordingApp` wraps moto's WSGI app. Each request that succeeded and can change state (not a
  Describe/List/Get/...) is appended to `<state dir>/moto-recording.jsonl` before its answer leaves, with
  the seed moto's random generator had for it. moto draws every id and generated name (stack ARNs,
  CloudFormation physical names) from that one generator, and the wrapper serves one request at a time,
  so a replay with the same seed gives the same ids: an UpdateStack recorded against a stack ARN finds
  that stack again after a restart.
- `restore` replays the journal straight into the WSGI app (no sockets) before the server is announced
  ready, after `compact` has left out what a later request replaces (an S3 object written again, a
  pipeline, rule or stack updated again): start time grows with the state there is, not with the
  number of demos that made it. Only a stack's update chain can come out differently when shortened
  (CloudFormation generates names for what it replaces), so each recorded stack change carries the
  stack's resulting ids and outputs, and a compacted stack that does not match them after the replay
  makes `restore` reset moto and replay with every stack update kept.
- Lines cut short by a crash are dropped, and `restore` says so.
- Each recorded change names the account it acted in (moto's account header, `ACCOUNT_HEADER`), decided as
  moto decides it when the request arrives: a request signed with STS session keys (an assumed role in
  another account, e.g. the production job's) acts in the role's account, but those keys mean nothing to
  the next start's moto, which would replay the request into its default account.

Not a pickle of moto's backends: they hold locks and threads, and their classes change between moto
releases, so a pickle written by one version may not load, or load wrong, in the next. Requests are
moto's public interface: a journal replays into any later moto that implements them.

Timestamps (CreationTime, LastModified) are those of the replay; their order is kept.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local_aws.core import journal
from local_aws.core.api import ACCOUNT_HEADER

log = logging.getLogger(__name__)

RECORDING = "moto-recording.jsonl"
# Actions that only read. Everything else is recorded: when in doubt, keep the request.
READ_PREFIXES = ("Describe", "List", "Get", "Head", "Query", "Scan", "Search", "Simulate", "TestEventPattern")
# S3 bucket settings a later PUT replaces whole (`?encryption`, ...).
S3_REPLACED_SETTINGS = {"encryption", "publicAccessBlock", "tagging", "policy", "lifecycle", "cors", "notification"}

Entry = dict[str, Any]
WsgiApp = Callable[..., Iterable[bytes]]


# --- what a request is ----------------------------------------------------------------------------
def service_of(entry: Entry) -> str:
    """The service from the signature's credential scope (…/<date>/<region>/<service>/aws4_request)."""
    authorization = _header(entry, "Authorization")
    scope = authorization.split("Credential=", 1)[1].split(",", 1)[0] if "Credential=" in authorization else ""
    parts = scope.split("/")
    return parts[3] if len(parts) > 3 else ""


def action_of(entry: Entry) -> str:
    """The API action: X-Amz-Target for JSON services, Action= for query ones, else the HTTP method."""
    target = _header(entry, "X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    form = _form(entry)
    if "Action" in form:
        return form["Action"][0]
    return entry.get("method", "")


def changes_state(entry: Entry) -> bool:
    if entry.get("method") in ("GET", "HEAD", "OPTIONS"):
        return False
    if urlsplit(entry.get("url", "")).path.startswith("/moto-api/"):
        return False
    return not action_of(entry).startswith(READ_PREFIXES)


# --- recording ------------------------------------------------------------------------------------
class RecordingApp:
    """moto's WSGI app, one request at a time, journaling each successful change."""

    def __init__(self, app: WsgiApp, state_dir: Path):
        self.app = app
        self.path = Path(state_dir) / RECORDING
        # One request at a time: each change must draw its ids from its own seed, undisturbed by a
        # request on another thread. moto holds the GIL for nearly all of a request anyway.
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        body = _read_body(environ)
        request = Request(environ)
        entry: Entry = {
            "headers": {name: value for name, value in request.headers.items() if name != "Transfer-Encoding"},
            "method": request.method,
            "url": request.url,
            "body": base64.b64encode(body).decode("ascii"),
            "body_encoded": True,
        }
        with self.lock:
            if changes_state(entry):
                _name_account(entry, environ)
                entry["seed"] = secrets.randbits(64)
                _seed_moto(entry["seed"])
            status, headers, chunks = _call(self.app, environ)
            if "seed" in entry and 200 <= int(status.split()[0]) < 300:
                if service_of(entry) == "cloudformation":
                    try:
                        entry["after"] = stack_fingerprint(self.app, entry)
                    except Exception:  # noqa: BLE001 - without it the chain is only never shortened
                        log.exception("could not describe the stack after %s", action_of(entry))
                journal.append(self.path, entry)  # before the answer leaves: what a client saw is kept
        start_response(status, headers)
        return chunks


def _name_account(entry: Entry, environ: dict) -> None:
    """Pin the account the request acts in, as moto decides it now (its keys, or its own account header)."""
    if _header(entry, ACCOUNT_HEADER):
        return
    from local_aws.core.gateway import caller_account  # moto's own decision, from this process's STS and IAM

    account = caller_account(Request(environ).headers)
    entry["headers"][ACCOUNT_HEADER] = account
    environ["HTTP_" + ACCOUNT_HEADER.upper().replace("-", "_")] = account  # the same account now as on replay


# --- replay ---------------------------------------------------------------------------------------
@dataclass
class Restored:
    replayed: int = 0  # requests replayed into moto
    recorded: int = 0  # complete entries in the journal before compaction
    said: list[str] = field(default_factory=list)  # what was dropped or changed, for `up` to print
    seconds: float = 0.0


def restore(app: RecordingApp, state_dir: Path) -> Restored:
    """Replay the journal into moto (call before anyone else can reach it), then rewrite it compacted."""
    started = time.monotonic()
    path = Path(state_dir) / RECORDING
    found = journal.read(path)
    result = Restored(recorded=len(found.entries), said=found.dropped(RECORDING))
    if not found.entries:
        if result.said:
            journal.rewrite(path, [])
        return result
    with app.lock:
        kept, compacted_stacks = compact(found.entries)
        failed = _replay(app.app, kept)
        mismatched = [name for name in compacted_stacks if not _stack_matches(app.app, kept, name)]
        if mismatched:
            # Shortened, these stacks' update chains gave other generated names (an update back to an
            # earlier version replaces nothing): replay again with those updates marked to keep, for good,
            # so this costs one extra replay once, not on every start.
            result.said.append(f"kept every update of stack(s) {', '.join(mismatched)}: shortened, they differ")
            for entry in found.entries:
                if service_of(entry) == "cloudformation" and _entry_stack(entry) in mismatched:
                    entry["keep"] = True
            _call(app.app, _environ({"method": "POST", "url": "http://localhost/moto-api/reset", "headers": {}}))
            kept, _ = compact(found.entries)
            failed = _replay(app.app, kept)
        if failed:
            result.said.append(f"dropped {len(failed)} recorded request(s) that moto refused on replay")
            kept = [entry for entry in kept if id(entry) not in failed]
        if len(kept) != len(found.entries) or found.truncated or found.unreadable:
            journal.rewrite(path, kept)
    result.replayed = len(kept)
    result.seconds = time.monotonic() - started
    for message in result.said:
        log.warning("%s", message)
    log.info("restored the AWS state: %d requests replayed in %.2f s", result.replayed, result.seconds)
    return result


def _replay(app: WsgiApp, entries: list[Entry]) -> set[int]:
    """Replay in order; returns the ids of the entries moto refused."""
    failed = set()
    for entry in entries:
        if "seed" in entry:
            _seed_moto(entry["seed"])
        status, _headers, chunks = _call(app, _environ(entry))
        if not 200 <= int(status.split()[0]) < 300:
            failed.add(id(entry))
            answer = b"".join(chunks)[:300]
            log.warning("replay: %s %s refused (%s): %s", service_of(entry), action_of(entry), status, answer)
    return failed


# --- compaction -----------------------------------------------------------------------------------
def compact(entries: list[Entry]) -> tuple[list[Entry], set[str]]:
    """The journal without reads and without requests a later one replaces whole.

    A replaced request's place is kept and the last one's content goes there, so whatever came in
    between (a target after its rule, an update after its create) still finds what it needs.
    Returns the kept entries and the names of the stacks whose update chains were shortened.
    """
    changes = [entry for entry in entries if changes_state(entry)]  # older recordings hold reads too
    copied = {_header(entry, "x-amz-copy-source").lstrip("/") for entry in changes} - {""}
    versioned = {_s3_path(entry)[0] for entry in changes if "versioning" in _query(entry)}
    keys = [None if entry.get("keep") else _replaced_by(entry, copied, versioned) for entry in changes]
    keys = _with_stack_generations(changes, keys)
    last = {key: index for index, key in enumerate(keys) if key is not None}
    first: dict[tuple, int] = {}
    kept, compacted_stacks = [], set()
    for index, (entry, key) in enumerate(zip(changes, keys, strict=True)):
        if key is None:
            kept.append(entry)
        elif key not in first:
            first[key] = index
            kept.append(changes[last[key]])
            if key[0] == "cloudformation" and last[key] != index:
                compacted_stacks.add(key[1])
    return kept, compacted_stacks


def _replaced_by(entry: Entry, copied: set[str], versioned: set[str]) -> tuple | None:
    """A key shared by the requests that replace one another whole, or None."""
    service, action = service_of(entry), action_of(entry)
    if service == "s3" and entry["method"] in ("PUT", "DELETE"):
        bucket, key = _s3_path(entry)
        query = _query(entry)
        if key and not query and f"{bucket}/{key}" not in copied and bucket not in versioned:
            return ("s3", bucket, key)
        if not key and not query:  # CreateBucket (every `up` sends one) or DeleteBucket: the last one stands
            return ("s3", bucket)
        if not key and entry["method"] == "PUT" and len(query) == 1 and set(query) <= S3_REPLACED_SETTINGS:
            return ("s3", bucket, "?" + next(iter(query)))
        return None
    fields = _json(entry) if _header(entry, "X-Amz-Target") else {}
    # The same fields each time: an update that leaves a field out would keep the earlier one's.
    shape = tuple(sorted(fields))
    if service == "sagemaker" and action == "UpdatePipeline":
        return ("sagemaker", fields.get("PipelineName"), shape)
    if service == "sagemaker" and action == "AddTags":  # each pipeline upsert tags it again
        keys = tuple(sorted(tag.get("Key", "") for tag in fields.get("Tags", [])))
        return ("sagemaker-tags", fields.get("ResourceArn"), keys)
    if service == "events" and action == "PutRule":
        return ("events-rule", fields.get("EventBusName"), fields.get("Name"), shape)
    if service == "events" and action == "PutTargets":
        ids = tuple(sorted(target.get("Id", "") for target in fields.get("Targets", [])))
        return ("events-targets", fields.get("EventBusName"), fields.get("Rule"), ids)
    if service == "cloudformation" and action == "UpdateStack" and "after" in entry:
        form = _form(entry)
        if any(name.endswith("UsePreviousValue") or name == "UsePreviousTemplate" for name in form):
            return None  # depends on the update before it
        shape = tuple(sorted({name.split(".", 1)[0] for name in form}))
        return ("cloudformation", _stack_name(form["StackName"][0]), shape)
    return None


def _with_stack_generations(entries: list[Entry], keys: list[tuple | None]) -> list[tuple | None]:
    """A stack created again (after a delete) is another stack: its updates never replace the old one's.
    Nor do updates replace one kept for good (`keep`): they come after it."""
    generation: dict[str, int] = {}
    result = []
    for entry, key in zip(entries, keys, strict=True):
        if service_of(entry) == "cloudformation" and key is None:
            name = _entry_stack(entry)
            generation[name] = generation.get(name, 0) + 1
        if key is not None and key[0] == "cloudformation":
            key = (*key, generation.get(key[1], 0))
        result.append(key)
    return result


# --- CloudFormation fingerprints ------------------------------------------------------------------
def stack_fingerprint(app: WsgiApp, entry: Entry) -> dict | None:
    """The stack's id, status, outputs and physical resource ids, asked of moto as a client would."""
    name = _entry_stack(entry)
    described = _ask_cloudformation(app, entry, "DescribeStacks", name)
    resources = _ask_cloudformation(app, entry, "DescribeStackResources", name)
    if described is None or resources is None:
        return None
    stack = described.find(".//Stacks/member")
    if stack is None:
        return None
    return {
        "StackId": stack.findtext("StackId"),
        "StackStatus": stack.findtext("StackStatus"),
        "Outputs": sorted(
            (o.findtext("OutputKey") or "", o.findtext("OutputValue") or "") for o in stack.iterfind("Outputs/member")
        ),
        "Resources": sorted(
            (r.findtext("LogicalResourceId") or "", r.findtext("PhysicalResourceId") or "")
            for r in resources.iterfind(".//StackResources/member")
        ),
    }


def _stack_matches(app: WsgiApp, kept: list[Entry], name: str) -> bool:
    recorded = [e for e in kept if service_of(e) == "cloudformation" and "after" in e]
    recorded = [e for e in recorded if _entry_stack(e) == name]
    if not recorded:
        return True
    expected = json.loads(json.dumps(recorded[-1]["after"]))  # tuples as lists, as the journal holds them
    return json.loads(json.dumps(stack_fingerprint(app, recorded[-1]))) == expected


def _ask_cloudformation(app: WsgiApp, entry: Entry, action: str, name: str) -> ElementTree.Element | None:
    headers = {k: v for k, v in entry["headers"].items() if k.lower() in ("authorization", "host", "x-amz-date")}
    headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    body = f"Action={action}&Version=2010-05-15&StackName={name}".encode()
    question = {"method": "POST", "url": entry["url"], "headers": headers, "body": body.decode()}
    status, _headers, chunks = _call(app, _environ(question))
    if not status.startswith("200"):
        return None
    root = ElementTree.fromstring(b"".join(chunks))  # noqa: S314 - moto's own answer, in this process
    for element in root.iter():  # drop the XML namespace: paths stay readable
        element.tag = element.tag.rsplit("}", 1)[-1]
    return root


# --- plumbing -------------------------------------------------------------------------------------
def _seed_moto(seed: int) -> None:
    from moto.moto_api._internal import mock_random  # moto's one source of ids and generated names

    mock_random.seed(seed)


def _call(app: WsgiApp, environ: dict) -> tuple[str, list, list[bytes]]:
    answer: dict[str, Any] = {}

    def start_response(status, headers, _exc_info=None):
        answer.update(status=status, headers=headers)

    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answer["status"], answer["headers"], chunks


def _environ(entry: Entry) -> dict:
    url = urlsplit(entry["url"])
    headers = {k: v for k, v in entry["headers"].items() if k.lower() not in ("content-length", "transfer-encoding")}
    return EnvironBuilder(
        path=url.path, query_string=url.query, method=entry["method"], headers=headers, data=_body(entry)
    ).get_environ()


def _read_body(environ: dict) -> bytes:
    """The whole request body, put back for moto to read."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: the server has de-chunked it
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)
    return body


def _body(entry: Entry) -> bytes:
    body = entry.get("body") or ""
    return base64.b64decode(body) if entry.get("body_encoded") else body.encode("utf-8")


def _header(entry: Entry, name: str) -> str:
    lowered = name.lower()
    return next((value for key, value in (entry.get("headers") or {}).items() if key.lower() == lowered), "")


def _form(entry: Entry) -> dict[str, list[str]]:
    if "x-www-form-urlencoded" not in _header(entry, "Content-Type"):
        return {}
    return parse_qs(_body(entry).decode("utf-8", "replace"), keep_blank_values=True)


def _json(entry: Entry) -> dict:
    try:
        document = json.loads(_body(entry) or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _query(entry: Entry) -> dict[str, list[str]]:
    return parse_qs(urlsplit(entry.get("url", "")).query, keep_blank_values=True)


def _s3_path(entry: Entry) -> tuple[str, str]:
    parts = urlsplit(entry.get("url", "")).path.lstrip("/").split("/", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _entry_stack(entry: Entry) -> str:
    return _stack_name((_form(entry).get("StackName") or [""])[0])


def _stack_name(name_or_arn: str) -> str:
    return name_or_arn.split(":stack/", 1)[1].split("/", 1)[0] if ":stack/" in name_or_arn else name_or_arn
