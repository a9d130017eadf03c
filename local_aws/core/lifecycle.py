"""Start, stop and describe the local stack's server process (the Python API behind `scripts/local-stack`).

    from local_aws import LocalStack

    with LocalStack(state_dir=tmp_path) as stack:     # starts the server, creates bucket + group
        env = stack.env                               # AWS_ENDPOINT_URL..., as `scripts/local-stack env`
        subprocess.run([...], env=stack.environ())    # a child process that talks to the stack
    # stopped by PID (SIGTERM, then SIGKILL), with every process of its group; a stack that was
    # already running when the block began is left running

State lives in the state folder (`.local/` at the repo root unless told otherwise):
`stack.json` (what is running: PID, URLs, environment), `stack.lock` (held by the server: one stack per
folder), `logs/server.log`, `events.jsonl`. A stack.json that cannot be read is reported and ignored: the
lock's PID still lets `down` stop the server it describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local_aws.core import statelock
from local_aws.core.api import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account: the stack's own (MOTO_ACCOUNT_ID changes it)
# Not the name a real project bucket gets (the project template names it after the project):
# a local bucket name can never be mistaken for, or collide with, a real one.
ARTIFACT_BUCKET = "sagemaker-local-artifacts"
MODEL_PACKAGE_GROUP = "abalone"
STATE_FILE = "stack.json"
SERVER_MODULE = "local_aws.core.server"
EXIT_LOCKED = 75  # the server's exit code when another server holds the folder (local_aws.core.server)
# The project's local GitLab runs in the stack's server, so an approval deploys through the template's rule
# and trigger Lambda as on AWS (see local_gitlab.service).
DEFAULT_PLUGINS = ("local_gitlab.service",)
PROJECT_TEMPLATE = REPO_ROOT / "cloudformation" / "project.yml"
PROJECT_STACK = f"sagemaker-{MODEL_PACKAGE_GROUP}"  # what the project stack would be called
IDEMPOTENCY_TABLE = f"local-{MODEL_PACKAGE_GROUP}-approval-idempotency"
# The template's AlertTopic and AlertWindowTable, made here (moto cannot build the template); the topic's outbox
# queue is what a subscriber would have received (local_aws.sns.outbox).
ALERT_TOPIC = f"{PROJECT_STACK}-alerts"
ALERT_WINDOW_TABLE = f"local-{MODEL_PACKAGE_GROUP}-alert-window"
# Production in its own account (`LocalStack(prod_account_id=...)`, `make demo PROD_ACCOUNT_ID=...`): what its
# administrator deploys there once (README "Production in its own AWS account"), deployed by moto's CloudFormation.
PROD_ACCOUNT_TEMPLATE = REPO_ROOT / "cloudformation" / "prod-account.yml"
PROD_ACCOUNT_STACK = f"{MODEL_PACKAGE_GROUP}-prod-account"
# The issuer the prod account's OIDC provider trusts, and that the local GitLab's ID token stand-ins name
# (local_gitlab.id_tokens): https, as the template requires, and stable across restarts (the port is not).
LOCAL_GITLAB_ISSUER = "https://127.0.0.1"
PROD_ACCOUNT_VARIABLE = "LOCAL_STACK_PROD_ACCOUNT_ID"  # set in the server for its plugins (the local GitLab)
# The local bucket has no customer key (SSE-S3): prod-account.yml still needs a well-formed tooling key ARN.
NO_TOOLING_KEY = "key/local-sse-s3-no-customer-key"
# botocore names a service's endpoint variable after its service id, which differs from the client name here.
SERVICE_IDS = {"events": "eventbridge"}
# Variables that would mix real credentials into requests to the local stack.
UNSET_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN")


_sessions: dict[tuple[str, str, str], Any] = {}  # boto3 sessions of LocalStack.client, by keys and region
_sessions_lock = threading.Lock()


class LocalStackError(RuntimeError):
    pass


def check_prod_account(account_id: str | None) -> str | None:
    """A prod account id as given (12 digits, not the stack's own), or None; else LocalStackError with the fix."""
    account_id = (account_id or "").strip() or None
    if account_id is None:
        return None
    if not (len(account_id) == 12 and account_id.isdigit()):
        raise LocalStackError(f"prod account {account_id!r} is not an AWS account id: give 12 digits (PROD_ACCOUNT_ID)")
    stack_account = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
    if account_id == stack_account:
        raise LocalStackError(
            f"prod account {account_id} is the tooling account itself: give another account id, or none for one account"
        )
    return account_id


def prod_account_parameters(tooling_account_id: str, region: str) -> dict[str, str]:
    """prod-account.yml's parameters as the local stack deploys it: the local project's names (local_gitlab.project:
    group `local`, deploy repo `model-deploy`) and the local GitLab's issuer."""
    return {
        "SageMakerProjectName": MODEL_PACKAGE_GROUP,
        "ToolingAccountId": tooling_account_id,
        "ArtifactBucketName": ARTIFACT_BUCKET,
        "ToolingKmsKeyArn": f"arn:aws:kms:{region}:{tooling_account_id}:{NO_TOOLING_KEY}",
        "GitLabServerUrl": LOCAL_GITLAB_ISSUER,
        "GitLabNamespacePath": "local",
        "DeployRepositoryName": "model-deploy",
    }


def default_state_dir() -> Path:
    return Path(os.environ.get("LOCAL_STACK_STATE_DIR") or REPO_ROOT / ".local")


def log_path(state_dir: Path) -> Path:
    return Path(state_dir) / "logs" / "server.log"


def read_state(state_dir: Path, unreadable: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """stack.json, or None when there is none or it cannot be read (then `unreadable(why)` is told)."""
    path = Path(state_dir) / STATE_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        info = f"{type(error).__name__}: {error}"
    if isinstance(info, dict) and isinstance(info.get("pid"), int):
        return info
    if unreadable is not None:
        unreadable(f"ignored {path}: not a stack description ({str(info)[:120]})")
    return None


def write_state(state_dir: Path, info: dict[str, Any]) -> None:
    path = Path(state_dir) / STATE_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)  # atomic: readers never see half a file


def remove_state(state_dir: Path, pid: int | None = None) -> None:
    """Remove stack.json; with `pid`, only if it still describes that process (an unreadable one goes too)."""
    info = read_state(state_dir)
    if info is None or pid is None or info.get("pid") == pid:
        (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)


def lock_holder(state_dir: Path) -> int | None:
    """The PID of the live server holding the folder's lock, from the lock file (see statelock)."""
    pid = statelock.recorded_pid(state_dir)
    if pid is not None and process_alive(pid) and SERVER_MODULE in process_command(pid):
        return pid
    return None


def stack_environment(info: Mapping[str, Any]) -> dict[str, str]:
    """The environment a process needs to use the stack, the same variables it would use for AWS."""
    return {
        "AWS_ENDPOINT_URL": info["moto_url"],
        "AWS_ENDPOINT_URL_SAGEMAKER": info["gateway_url"],
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": info["gateway_url"],
        # EventBridge too: the gateway answers TestEventPattern (moto does not), and forwards the rest to moto.
        "AWS_ENDPOINT_URL_EVENTBRIDGE": info["gateway_url"],
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": info["region"],
        "AWS_REGION": info["region"],
        "AWS_EC2_METADATA_DISABLED": "true",  # no 1-second probes of an instance metadata service
        "ARTIFACT_BUCKET": ARTIFACT_BUCKET,
        "MODEL_PACKAGE_GROUP_NAME": MODEL_PACKAGE_GROUP,
        "LOCAL_STACK_STATE_DIR": info["state_dir"],
    }


def process_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():  # Linux; elsewhere (macOS) signal 0 answers
        try:
            # The state letter follows the command name in parentheses; Z is a zombie: already dead.
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)  # no /proc: "some process of the group exists" is all we can know
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ...
            members.append(int(stat.parent.name))
    return members


def process_command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        answer = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
        return answer.stdout


class LocalStack:
    def __init__(
        self,
        state_dir: Path | str | None = None,
        region: str | None = None,
        plugins: tuple[str, ...] | list[str] = (),
        progress: Callable[[str], None] | None = None,
        local_gitlab: bool = True,
        prod_account_id: str | None = None,
    ):
        self.state_dir = Path(state_dir or default_state_dir()).resolve()
        self.region = region  # None: a running stack's region, else DEFAULT_REGION
        # .py plugin files are resolved here: the server runs from the repo root, not our directory.
        # local_gitlab=False: a stack without the local GitLab (emulator tests), so approvals trigger nothing.
        defaults = DEFAULT_PLUGINS if local_gitlab else ()
        plugins = (*defaults, *(plugin for plugin in plugins if plugin not in defaults))
        self.plugins = tuple(str(Path(plugin).resolve()) if plugin.endswith(".py") else plugin for plugin in plugins)
        self.progress = progress or (lambda _message: None)
        # Production in a second account: the stack bootstraps it (prod-account.yml) and its local GitLab's
        # deploy project gets the two-account variables. None: one account, as before.
        self.prod_account_id = check_prod_account(prod_account_id)
        self.info: dict[str, Any] | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen | None = None

    # --- the Python API -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> dict[str, str]:
        """Start the server (or find it running), create the bucket and group; return the environment."""
        running = self.running()
        if running is not None:
            self._check_matches(running)
            self.progress(f"local stack already running (PID {running['pid']}, state {self.state_dir})")
            self.info = running
        else:
            self.info = self._launch(timeout)
        try:
            self._bootstrap()
        except BaseException:
            if self._started_here():
                self.stop()  # a server we launched must not outlive a failed start
            raise
        return dict(self.info["env"])

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server by its PID, with its process group. True if something was running."""
        info = read_state(self.state_dir, unreadable=self.progress)
        pid = info["pid"] if info else (self._process.pid if self._process else lock_holder(self.state_dir))
        if pid is None or not self._alive(pid):
            remove_state(self.state_dir)
            self._reap()
            if pid is not None:
                self._kill_leftover_group(pid)  # a server that died (SIGKILL, crash) leaves its step scripts
            self.progress("local stack is not running")
            return False
        if SERVER_MODULE not in process_command(pid):
            raise LocalStackError(
                f"PID {pid} in {self.state_dir / STATE_FILE} is not a local stack server (the PID was reused?): "
                f"not stopping it. Delete {STATE_FILE} if the stack is gone."
            )
        self.progress(f"stopping local stack (PID {pid})")
        self._signal(pid, signal.SIGTERM)
        if not self._wait_for_exit(pid, timeout):
            self.progress(f"PID {pid} still running after {timeout:.0f} s: killing it")
            self._signal(pid, signal.SIGKILL)
            self._wait_for_exit(pid, 5)
        self._reap()
        self._kill_leftover_group(pid)
        remove_state(self.state_dir)
        self.info = None
        self.progress("local stack stopped")
        return True

    def running(self) -> dict[str, Any] | None:
        """stack.json if its server is alive; a stale or unreadable stack.json is removed."""
        info = read_state(self.state_dir, unreadable=self.progress)
        if info is None:
            if (self.state_dir / STATE_FILE).exists():
                remove_state(self.state_dir)
            return None
        if self._alive(info["pid"]) and SERVER_MODULE in process_command(info["pid"]):
            return info
        remove_state(self.state_dir, pid=info["pid"])
        return None

    @property
    def env(self) -> dict[str, str]:
        info = self.info or self.running()
        if info is None:
            raise LocalStackError(f"the local stack is not running (state {self.state_dir}): start it first")
        return dict(info["env"])

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: os.environ) with the stack's environment applied, for child processes."""
        merged = {key: value for key, value in (os.environ if base is None else base).items()}
        for name in UNSET_VARIABLES:
            merged.pop(name, None)
        return merged | self.env

    def client(self, service: str):
        """A boto3 client on this stack: the endpoint resolved from its environment as botocore does
        (AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL), its dummy keys and region, and no retries
        (moto answers unimplemented calls with 500, which retrying only hides)."""
        import boto3
        from botocore.config import Config

        env = self.env
        service_id = SERVICE_IDS.get(service, service).upper().replace("-", "_")  # botocore's variable names
        endpoint = env.get(f"AWS_ENDPOINT_URL_{service_id}", env["AWS_ENDPOINT_URL"])
        key = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"])
        with _sessions_lock:  # building clients from one session is not thread-safe
            # One session per keys and region: a new session re-reads the service models and endpoint rules
            # (~0.3 s of CPU a client, about 4 s of every `up`); a client from a warm session costs ~20 ms.
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = boto3.session.Session(
                    aws_access_key_id=key[0], aws_secret_access_key=key[1], region_name=key[2]
                )
            return session.client(service, endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        if self._started_here():  # a stack that was already running is someone else's to stop
            self.stop()

    # --- internals ------------------------------------------------------------------------------
    def _check_matches(self, running: dict[str, Any]) -> None:
        """A running stack is reused only if it is the one asked for: never ignore a region or plugin silently."""
        problems = []
        if self.region is not None and self.region != running["region"]:
            problems.append(f"it answers for region {running['region']}, not {self.region}")
        missing = [plugin for plugin in self.plugins if plugin not in running["plugins"]]
        if missing:
            problems.append(f"it has not loaded the plugin(s) {', '.join(missing)}")
        if (running.get("prod_account_id") or None) != self.prod_account_id:
            problems.append(f"its prod account is {running.get('prod_account_id') or 'none (one account)'}")
        if problems:
            raise LocalStackError(
                f"the local stack in {self.state_dir} is already running (PID {running['pid']}), but "
                f"{' and '.join(problems)}. Stop it first (scripts/local-stack down), or use another --state-dir."
            )

    def _launch(self, timeout: float) -> dict[str, Any]:
        # No clean-up of stack.json here: `running` removed a stale one, and a fresh one may be a server
        # that another `up` started a moment ago (the lock decides which server lives).
        log_file = log_path(self.state_dir)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        region = self.region or DEFAULT_REGION
        command = [sys.executable, "-m", SERVER_MODULE, "--state-dir", str(self.state_dir), "--region", region]
        for plugin in self.plugins:
            command += ["--plugin", plugin]
        if self.prod_account_id:
            command += ["--prod-account", self.prod_account_id]
        child_env = dict(os.environ)
        self.progress(f"starting local stack (state {self.state_dir}, log {log_file})")
        started = time.monotonic()
        with log_file.open("ab") as log_stream:
            # Its own session: Ctrl-C in this terminal does not reach it, and `stop` ends its whole group.
            self._process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            info = read_state(self.state_dir)
            if info is not None and info.get("pid") == self._process.pid:
                self.startup_seconds = time.monotonic() - started
                for message in info.get("recovered", []):
                    self.progress(message)
                self.progress(
                    f"local stack ready in {self.startup_seconds:.2f} s (PID {info['pid']}): "
                    f"gateway {info['gateway_url']}, moto {info['moto_url']}; "
                    f"{info.get('restored_requests', 0)} recorded AWS requests replayed"
                )
                return info
            if self._process.poll() == EXIT_LOCKED:
                self._process = None
                holder = statelock.recorded_pid(self.state_dir)
                raise LocalStackError(str(statelock.StackLocked(self.state_dir, holder)))
            if self._process.poll() is not None:
                raise LocalStackError(
                    f"the local stack server exited with code {self._process.returncode} during startup. "
                    f"Last lines of {log_file}:\n{_tail(log_file)}"
                )
            time.sleep(0.02)
        self._signal(self._process.pid, signal.SIGKILL)
        self._reap()
        raise LocalStackError(
            f"the local stack was not ready after {timeout:.0f} s. Last lines of {log_file}:\n{_tail(log_file)}"
        )

    def _bootstrap(self) -> None:
        from botocore.exceptions import ClientError

        env = self.info["env"]
        region = env["AWS_REGION"]  # the running stack's: `up` may have found it running
        s3 = self.client("s3")
        bucket = env["ARTIFACT_BUCKET"]
        try:
            create = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **create)
        except ClientError as error:
            if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        # As the project template's ArtifactBucket: S3 sends its object events to EventBridge, where the batch
        # pipeline's input rule (model-deploy/batch-schedule-template.yml) waits for them (local_aws/s3/).
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        self.progress(
            f"artifact bucket s3://{bucket} (encrypted at rest, public access blocked, events to EventBridge)"
        )
        sagemaker = self.client("sagemaker")
        group = env["MODEL_PACKAGE_GROUP_NAME"]
        try:
            sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            self.progress(f"model package group {group} (already there)")
        except ClientError:
            sagemaker.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription="Abalone models built on the local stack"
            )
            self.progress(f"model package group {group} (created)")
        self._provision_event_routing()
        if self.info.get("prod_account_id"):
            self._bootstrap_prod_account(self.info["prod_account_id"])

    def _bootstrap_prod_account(self, account_id: str) -> None:
        """What the prod account's administrator deploys once: cloudformation/prod-account.yml, in that account.

        moto's CloudFormation creates its roles, key, capture bucket and alert topic; it skips the bucket and
        topic policies and the OIDC provider (no moto support), so the provider is created with IAM's own call.
        The requests act in the prod account by moto's account header, which the journal keeps: a restart
        replays them there."""
        from botocore.exceptions import ClientError

        from local_aws.core.api import moto_client

        moto_url, region = self.info["moto_url"], self.info["region"]
        cloudformation = moto_client(moto_url, "cloudformation", region, account_id)
        try:
            stack = cloudformation.describe_stacks(StackName=PROD_ACCOUNT_STACK)["Stacks"][0]
            self.progress(f"prod account {account_id}: stack {PROD_ACCOUNT_STACK} (already there)")
        except ClientError:
            parameters = prod_account_parameters(self.info["account_id"], region)
            cloudformation.create_stack(
                StackName=PROD_ACCOUNT_STACK,
                TemplateBody=PROD_ACCOUNT_TEMPLATE.read_text(encoding="utf-8"),
                Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
                Capabilities=["CAPABILITY_NAMED_IAM"],
            )
            stack = cloudformation.describe_stacks(StackName=PROD_ACCOUNT_STACK)["Stacks"][0]
            self.progress(f"prod account {account_id}: stack {PROD_ACCOUNT_STACK} from {PROD_ACCOUNT_TEMPLATE.name}")
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise LocalStackError(
                f"the prod account's stack {PROD_ACCOUNT_STACK} is {stack['StackStatus']}: "
                f"{stack.get('StackStatusReason') or 'no reason given'}. `make clean` starts from scratch"
            )
        iam = moto_client(moto_url, "iam", region, account_id)
        issuer = LOCAL_GITLAB_ISSUER.removeprefix("https://")
        providers = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
        if not any(arn.endswith(f":oidc-provider/{issuer}") for arn in providers):
            iam.create_open_id_connect_provider(
                Url=LOCAL_GITLAB_ISSUER, ClientIDList=["sts.amazonaws.com/production"], ThumbprintList=[]
            )
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.progress(
            f"prod account {account_id}: deploy role {outputs.get('GitLabDeployProdRoleArn')}, capture bucket "
            f"{outputs.get('DataCaptureBucketName')}, OIDC provider {LOCAL_GITLAB_ISSUER} (production audience)"
        )

    def _provision_event_routing(self) -> None:
        """The project template's EventBridge rules and their Lambda targets, read from the template itself."""
        from local_aws.cloudformation import event_routing

        gitlab = (self.info.get("services") or {}).get("gitlab")
        if gitlab is None:
            self.progress("no local GitLab in this stack: the project template's event rules are not provisioned")
            return
        retraining = os.environ.get("LOCAL_STACK_RETRAINING_TARGET") or "gitlab"
        if retraining not in ("gitlab", "pipeline"):
            raise LocalStackError(
                f"LOCAL_STACK_RETRAINING_TARGET={retraining!r}: the project template's RetrainingTarget is gitlab"
                " or pipeline"
            )
        self._ensure_idempotency_table()
        alert_topic = self._ensure_alerts()
        rules = event_routing.provision(
            PROJECT_TEMPLATE,
            stack_name=PROJECT_STACK,
            parameters={
                "SageMakerProjectName": self.info["env"]["MODEL_PACKAGE_GROUP_NAME"],
                "GitLabServerUrl": gitlab["url"],
                # The template's RetrainingTarget: gitlab (its default) or pipeline.
                "RetrainingTarget": retraining,
            },
            resources={
                "TriggerSecret": gitlab["trigger_secret_arn"],
                "IdempotencyTable": IDEMPOTENCY_TABLE,
                "AlertTopic": alert_topic,
                "AlertWindowTable": ALERT_WINDOW_TABLE,
            },
            client=self.client,
            account_id=self.info["account_id"],
            region=self.info["region"],
            code_root=REPO_ROOT / "cloudformation",
            task_roots=self.state_dir / "lambda",
        )
        for rule in rules:
            targets = ", ".join(arn.rsplit(":", 1)[-1] for arn in rule.targets)
            self.progress(f"EventBridge rule {rule.name} (from {PROJECT_TEMPLATE.name}) -> {targets}")

    def _ensure_alerts(self) -> str:
        """The alert topic with its outbox, and the alert gate's window table (both keyed like the template's)."""
        from local_aws.sns import outbox

        self._ensure_idempotency_table(ALERT_WINDOW_TABLE)
        topic_arn, _queue = outbox.ensure(self.client, ALERT_TOPIC)
        self.progress(f"alert topic {ALERT_TOPIC} (messages to its outbox queue {ALERT_TOPIC}{outbox.OUTBOX_SUFFIX})")
        return topic_arn

    def _ensure_idempotency_table(self, name: str = IDEMPOTENCY_TABLE) -> None:
        """The template's IdempotencyTable (or AlertWindowTable): key `id`, TTL `expiration`."""
        dynamodb = self.client("dynamodb")
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
            )

    def _started_here(self) -> bool:
        return self._process is not None

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return process_alive(pid)

    def _wait_for_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.02)
        return not self._alive(pid)

    def _signal(self, pid: int, signum: int) -> None:
        try:
            if os.getpgid(pid) == pid:  # the server leads its own group (start_new_session)
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _kill_leftover_group(self, pgid: int) -> None:
        """Children the server started (step scripts) must not outlive it."""
        left = group_members(pgid)
        if not left:
            return  # the usual case
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while group_members(pgid) and time.monotonic() < deadline:  # SIGKILL is delivered, not awaited
            time.sleep(0.02)
        self.progress(f"killed {len(left)} process(es) left in the stack's process group {pgid}: {left}")

    def _reap(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            self._process = None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
