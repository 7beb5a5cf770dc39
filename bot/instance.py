"""This daemon process among others: its id, its host, and whether another process on the
same host is still alive."""

from __future__ import annotations

import os
import socket
import uuid


def this_host() -> str:
    return socket.gethostname()


def new_instance_id() -> str:
    """`host-pid-random`: unique per process start, readable in logs and `sopbot status`."""
    return f"{this_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
