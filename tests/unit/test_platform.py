"""ops.platform's scheduling helper: a niced thread, the rest of the process untouched."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from ops.platform import yield_cpu_to_others


@pytest.mark.skipif(sys.platform != "linux", reason="a thread has a priority of its own only on Linux")
def test_only_the_calling_thread_is_niced():
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}

    def worker() -> None:
        me = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, me)
        yield_cpu_to_others(5)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, me)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["after"] == min(seen["before"] + 5, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == main_before
