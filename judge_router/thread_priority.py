"""Background threads that yield the CPU to request handling.

Linux schedules threads, not processes: `setpriority` on a thread's own id lowers that thread's
niceness alone. The dashboard's reads and roll-up do their work in SQLite, outside the GIL, so a
low-priority thread waits for the CPU only while the event loop's threads want it. Elsewhere (or
where the call is refused) the thread keeps the normal priority.
"""

from __future__ import annotations

import os
import sys
import threading

BACKGROUND_NICENESS = 10


def lower_this_thread(niceness: int = BACKGROUND_NICENESS) -> bool:
    """Lower the calling thread's CPU priority; whether it could be."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(current, niceness))
    except OSError:
        return False
    return True
