"""The warm API's reloads under `invoke dev`: SIGHUP for an edit of its sources, and what the warm
server's events file says came of it (reloaded, failed to load, a worker exited, gave up)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from ops import api
from ops.dev_components import Live, last_lines, log_tail
from ops.dev_view import View
from ops.settings import Settings
from ops.state import ProcessRecord


class WarmReloads:
    def __init__(self, settings: Settings, view: View) -> None:
        self.settings, self.view = settings, view
        self.offset = 0  # how far the events file has been read
        self.pending: list[str] | None = None  # the files a reload under way is for

    def reload(self, record: ProcessRecord, live: Live, paths: list[str]) -> bool:
        """SIGHUP to the warm server; False when there is none to reload (then converge)."""
        pid = record.pid
        if record.server != "warm" or not api.is_ours(pid, self.settings):
            return False
        assert pid is not None
        self.pending = paths
        live.status = "reloading"
        os.kill(pid, signal.SIGHUP)
        return True

    def read_events(self, name: str, live: Live, record: ProcessRecord, reloaded: Callable[[], None]) -> None:
        """Show what the warm server did since the last read; `reloaded()` when a reload has
        finished (the new code serves: its fingerprint is to be recorded, its health probed soon)."""
        from ops.warm_server import read_events

        events, self.offset = read_events(api.events_path(self.settings), self.offset)
        for event in events:
            kind = event.get("event")
            if kind == "reloaded":
                why = f" ({', '.join(self.pending)})" if self.pending else ""
                live.status, live.note = "healthy", f"restarted in {event.get('seconds', 0):.2f} s{why}"
                self.view.say(f"{name} {live.note}")
                self.view.alert("", None)
                self.pending = None
                reloaded()
            elif kind == "reload_failed":
                live.status, live.note = "broken", "the previous code still serves"
                self.view.alert(
                    f"{name}: the new code does not load — {event.get('error', 'failed')}",
                    str(event.get("traceback", "")),
                )
                self.pending = None
            elif kind == "child_exited":
                live.note = f"worker pid {event.get('pid')} exited ({event.get('code')})"
                if record.restart != "no":  # else dev reloads the API (DevLoop._heal_workers)
                    live.backoff.restarts += 1
                    live.note += "; restarting"
                self.view.say(f"{name}: {live.note}")
            elif kind == "gave_up":
                live.status, live.note = "failed", "crashed too often; the warm server gave up"
                self.view.alert(f"{name}: {live.note}", last_lines(log_tail(api.log_path(self.settings))))
