"""Progress lines for long steps: done of total, rate, time left, one line at a time.

Why not a progress bar: the flow's output goes to Metaflow's task logs and to CI logs,
where a bar redrawn with carriage returns becomes thousands of fragments. A line every
`every` seconds (and one at the end) reads well in a terminal and in a log file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

DEFAULT_EVERY_SECONDS = 20.0


class Progress:
    """Call `advance(n)` as work is done; it prints at most one line every `every` seconds.

    `total` may be None when unknown (then no percentage or time left is shown).
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str = "rows",
        every: float = DEFAULT_EVERY_SECONDS,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.what, self.total, self.unit, self.every, self.echo = what, total, unit, every, echo
        self.done = 0
        self.started = self._last = time.monotonic()

    def advance(self, count: int) -> None:
        """Count `count` more done (never past `total`: a last short batch counts as full)."""
        self.done = min(self.done + count, self.total) if self.total else self.done + count
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.echo(self.line(now))

    def finish(self) -> str:
        """Print and return the closing line (with the whole step's rate)."""
        line = self.line(time.monotonic(), final=True)
        self.echo(line)
        return line

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        done = f"{self.done:,}" + (f" / {self.total:,}" if self.total else "")
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        if final:
            return f"{self.what}: {done} {self.unit} in {_duration(elapsed)}, {rate:,.0f}/s"
        left = ""
        if self.total and rate > 0:
            left = f", {_duration(max(self.total - self.done, 0) / rate)} left"
        return f"{self.what}: {done} {self.unit}{share}, {rate:,.0f}/s{left}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@contextmanager
def dask_progress(what: str, every: float = DEFAULT_EVERY_SECONDS) -> Iterator[None]:
    """Progress lines for the dask computations run inside (NVTabular's fit and transform
    run on dask): tasks done of the graph's tasks, one `Progress` per computation."""
    from dask.callbacks import Callback

    class _Lines(Callback):
        def _start(self, dsk) -> None:
            self.progress = Progress(what, len(dsk), unit="tasks", every=every)

        def _posttask(self, key, result, dsk, state, worker_id) -> None:
            self.progress.advance(1)

        def _finish(self, dsk, state, errored) -> None:
            if not errored:
                self.progress.finish()

    with _Lines():
        yield
