"""The local stack's server process: a moto server and the gateway, on 127.0.0.1, free ports.

    python -m local_aws.core.server --state-dir .local [--region us-east-1] [--plugin MODULE ...]

Started in the background by `scripts/local-stack up` (or `local_stack.LocalStack`); stopped by
SIGTERM to its PID. When both servers listen and every plugin is loaded, it writes
`<state dir>/stack.json` (ports, PID, environment): that file appearing is the readiness signal.
It holds `<state dir>/stack.lock` for its whole life (`statelock`): a second server for the same folder
exits at once with EXIT_LOCKED.

The emulated services (`SERVICES`) are imported at startup, then each `--plugin` (a module name or a .py
file), for their `local_aws.core.api.register(...)` and `local_aws.events.bus.subscribe(...)` calls. A module
that defines `start(context) -> dict` is started once moto and the gateway listen (its dict is published in
stack.json under `services`, e.g. the local GitLab's URL), and its `stop()` runs at shutdown. A module that
fails to import or start stops the startup with its error. A module that defines `recover(state_dir) -> list[str]`
is called before anything is served, to mend what a crash left (its messages are published in stack.json
under `recovered`, and `up` prints them). The server sets LOCAL_STACK_STATE_DIR in its own
environment for them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

STARTED = time.monotonic()

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402 - after the clock: startup time includes imports
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

from local_aws.core import api, lifecycle, persistence, statelock  # noqa: E402
from local_aws.core.gateway import Gateway  # noqa: E402
from local_aws.events import bus as events  # noqa: E402

log = logging.getLogger("local_aws.core.server")

# One package per emulated AWS service, each behind that service's own API.
SERVICES = ("local_aws.sagemaker", "local_aws.events", "local_aws.cloudwatch", "local_aws.s3", "local_aws.scheduler")
EXIT_LOCKED = 75  # EX_TEMPFAIL: another server has this state folder
# off: no warm-up import of xgboost (1.3 s of CPU) after start, for stacks that serve no endpoint (the tests').
WARM_UP_VARIABLE = "LOCAL_STACK_WARM_UP"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.core.server", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=lifecycle.default_state_dir())
    parser.add_argument("--region", default=lifecycle.DEFAULT_REGION)
    parser.add_argument("--plugin", action="append", default=[], help="module to import at startup (repeatable)")
    parser.add_argument("--prod-account", default="", help="production's own AWS account id (two accounts)")
    args = parser.parse_args(argv)
    warm_up = os.environ.get(WARM_UP_VARIABLE, "on")
    if warm_up not in ("on", "off"):
        parser.error(f"{WARM_UP_VARIABLE}={warm_up!r}: set it to on (the default) or off")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log: one line per request

    # Not sigwait with the signals blocked: the mask would pass to every process the executor
    # starts, and those could no longer be stopped with SIGTERM.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: stop.set())

    state_dir = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = statelock.acquire(state_dir)  # held (open) until this process exits
    except statelock.StackLocked as error:
        log.error("%s", error)
        return EXIT_LOCKED
    events.configure(state_dir)
    account_id = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)

    os.environ["LOCAL_STACK_STATE_DIR"] = str(state_dir)  # for plugins and the processes they start
    # The local GitLab's deploy project reads it (its two-account variables): never inherited from the caller.
    os.environ.pop(lifecycle.PROD_ACCOUNT_VARIABLE, None)
    if args.prod_account:
        os.environ[lifecycle.PROD_ACCOUNT_VARIABLE] = args.prod_account

    plugins = [*SERVICES, *args.plugin]
    modules = []
    for plugin in plugins:
        modules.append(_load_plugin(plugin))
        log.info("loaded %s", plugin)

    recovered = []
    for module in modules:
        if callable(getattr(module, "recover", None)):
            recovered += module.recover(state_dir)
    _cache_moto_module_list()
    # moto's own server, with the journal in front of its app (persistence.py). The AWS state is
    # replayed before the port is published, so no request can come in between.
    moto_app = persistence.RecordingApp(DomainDispatcherApplication(create_backend_app), state_dir)
    moto = make_server("127.0.0.1", 0, moto_app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=moto.serve_forever, name="moto", daemon=True).start()
    moto_host, moto_port = moto.server_address[:2]
    restored = persistence.restore(moto_app, state_dir)
    recovered += restored.said
    gateway = Gateway(f"http://{moto_host}:{moto_port}", args.region, account_id, state_dir)
    threading.Thread(target=gateway.serve_forever, name="gateway", daemon=True).start()
    gateway.runtime.capture.start()
    environment = lifecycle.stack_environment(
        {"moto_url": f"http://{moto_host}:{moto_port}", "gateway_url": gateway.url, "region": args.region}
        | {"state_dir": str(state_dir)}
    )
    gateway.environment = environment
    services: dict = {}
    started = [module for module in modules if callable(getattr(module, "start", None))]
    for module in started:
        services |= module.start(gateway.context(args.region)) or {}

    info = {
        "pid": os.getpid(),
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "startup_seconds": round(time.monotonic() - STARTED, 3),
        # CPU time too: on a shared machine the wall time mostly measures the neighbours.
        "startup_cpu_seconds": round(time.process_time(), 3),
        "state_dir": str(state_dir),
        "region": args.region,
        "account_id": account_id,
        "prod_account_id": args.prod_account,
        "moto_url": f"http://{moto_host}:{moto_port}",
        "gateway_url": gateway.url,
        "log": str(lifecycle.log_path(state_dir)),
        "plugins": plugins,
        "local_operations": api.registered_operations(),
        "services": services,
        "restored_requests": restored.replayed,
        "restore_seconds": round(restored.seconds, 3),
        "recovered": recovered,
        "lock": str(state_dir / statelock.LOCK_FILE),
    }
    info["env"] = environment
    lifecycle.write_state(state_dir, info)
    log.info("ready in %.2f s: gateway %s, moto %s", info["startup_seconds"], gateway.url, info["moto_url"])
    if warm_up == "on":
        threading.Thread(target=_warm_up, args=(gateway,), name="warm-up", daemon=True).start()
    else:
        log.info("no runtime warm-up (%s=off): the first InvokeEndpoint imports xgboost", WARM_UP_VARIABLE)

    while not stop.wait(0.1):  # a short wait: the handler only runs when the main thread wakes
        pass
    log.info("stopping")
    # Each shutdown waits up to half a second for its serve loop: run them side by side.
    gateway.runtime.capture.stop()  # the last buffered captures are written while moto still listens
    stopping_moto = threading.Thread(target=moto.shutdown, name="stop-moto")
    stopping_moto.start()
    for module in reversed(started):
        if callable(getattr(module, "stop", None)):
            module.stop()
    gateway.shutdown()
    gateway.server_close()
    stopping_moto.join()
    events.close()
    lifecycle.remove_state(state_dir, pid=os.getpid())
    log.info("stopped")
    os.close(lock)
    return 0


def _cache_moto_module_list() -> None:
    """moto's dispatcher lists its own package folder (about 180 stat calls) on every request to find
    the service: 4 ms a request, most of a replayed request's time. The folder does not change while
    the server runs, so list it once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _load_plugin(plugin: str) -> ModuleType:
    """Import a module by name, or a .py file by path."""
    if not plugin.endswith(".py"):
        return importlib.import_module(plugin)
    path = Path(plugin).resolve()
    name = f"local_stack_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _warm_up(gateway: Gateway, quiet_seconds: float = 1.0, longest_wait: float = 15.0) -> None:
    """Import what the first InvokeEndpoint needs (xgboost takes ~2 s) while nobody waits for it
    (unless LOCAL_STACK_WARM_UP=off: a stack that serves no endpoint saves 1.3 s of CPU).

    It waits for a quiet second first: `up` creates the bucket and group right after readiness,
    and a 2-second import holding the GIL would double that time.
    """
    deadline = time.monotonic() + longest_wait
    while time.monotonic() < deadline and time.monotonic() - gateway.last_request_at < quiet_seconds:
        time.sleep(0.1)
    started = time.monotonic()
    importlib.import_module("xgboost")
    importlib.import_module("moto.sagemaker.models")
    importlib.import_module("moto.s3.models")
    log.info("runtime warm-up done in %.2f s", time.monotonic() - started)


if __name__ == "__main__":
    code = main()
    # Everything is flushed and closed: skip the interpreter's teardown of xgboost, sklearn and
    # moto (about 0.6 s), so `down` returns at once.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
