"""`invoke restart [COMPONENT]`: stop one component (or all), then converge as `up` does.

The same code as `up` brings back what was stopped, so a restart is a stop plus a converge;
an API that ran under the warm server (`invoke dev`) comes back under it.
"""

from __future__ import annotations

from collections.abc import Callable

from ops import api
from ops.backends import select_backend
from ops.endpoint import Endpoint
from ops.errors import UsageError
from ops.session import session
from ops.settings import Settings
from ops.stack import UpResult, declared_stack, stop_declared, stop_recorded_api, up
from ops.steps import Emit, Step

STOPPABLE = ("postgres", "asgi", "process")


def restart(
    settings: Settings,
    component: str | None = None,
    emit: Emit = print,
    seed: Callable[[Endpoint], str] | None = None,
) -> UpResult:
    stack = declared_stack(settings)
    if component is not None and component not in stack.components:
        raise UsageError(f"unknown component {component!r}", f"choose one of {', '.join(stack.order)}")
    names = [component] if component else list(reversed(stack.order))  # dependents stop first
    with session(settings, "restart", emit) as run:
        warm = api.ran_under_dev(run.state.api)  # an `up` of several workers comes back as `up` made it
        for name in names:
            kind = stack.components[name].kind
            with run.ledger.step(f"{name}-stop") as step:
                if kind not in STOPPABLE:
                    step.skip(f"{kind} runs no process; up checks it again")
                elif kind == "asgi":
                    pid = run.state.api.pid
                    _stopped(step, stop_recorded_api(settings, run.state.api), pid)
                elif kind == "process" and name in run.state.processes:
                    record = run.state.processes[name]
                    _stopped(step, stop_declared(settings, name, record), record.pid)
                elif kind == "postgres":
                    backend, _ = select_backend(settings, run.state)
                    if not backend.owns_server:
                        step.skip("an external server is not ours to restart")
                    else:
                        _stopped(step, backend.stop(), run.state.db.pid)
                        run.state.db = backend.record
                else:
                    step.skip("not running")
    return up(settings, emit, seed=seed, stack=stack, warm_api=warm)


def _stopped(step: Step, stopped: bool, pid: int | None) -> None:
    if stopped:
        step.detail = f"stopped pid {pid}" if pid else "stopped"
    else:
        step.skip("not running")
