"""One long-lived holder of the embedded engine's file at a time, said clearly.

DuckDB lets one process write a file, and no other process open it meanwhile. The
service holds its file for its lifetime (read-only, or writing with `--consume`), and the
standalone consumer writes it batch after batch: started beside each other, the second
used to wait on DuckDB's lock without limit. Each of them now claims `<file>.holder` (an
exclusive `flock`, released by the kernel when the process ends, even by `kill -9`) and
writes its process id and command line into it; the second to start stops at once with
a message naming the first and the command that does both: `python -m recsys.serve
--consume`. Short readers (the page, the flow, `recsys.store.sql`) claim nothing.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from recsys.store.sql_objects import EngineError

BOTH = "python -m recsys.serve --consume"


class FileHeld(EngineError):
    """Another process holds the embedded engine's file; the message names it."""


class Holder:
    """The claim of one process on a DuckDB file, until `release` or the process ends."""

    def __init__(self, duckdb_path: Path, role: str) -> None:
        self.path = Path(f"{duckdb_path}.holder")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(self._fd, 4096, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise FileHeld(held_message(duckdb_path, role, other)) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()} {' '.join(sys.argv) or role}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def held_message(duckdb_path: Path, role: str, other: str) -> str:
    """Why `role` cannot start: who holds the file, and what to run instead."""
    pid, _, command = other.partition(" ")
    who = f"process {pid} ({command})" if pid else "another process"
    return (
        f"{duckdb_path} is held by {who}: one process at a time writes the embedded "
        f"engine's file, so the {role} cannot start beside it. Stop it first, or run "
        f"`{BOTH}`, which serves and consumes in one process."
    )
