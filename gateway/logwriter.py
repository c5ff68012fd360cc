"""Log lines written off the event loop, in batches (DESIGN §7).

A record costs its caller one append: a writer thread of its own wakes every ``interval`` seconds, masks
(``gateway.masking``), formats and writes whatever has gathered in one write. Measured with ``make bench``, a
thread woken for every record (``logging.handlers.QueueListener``) cost VerifyCard about 0.3 ms of CPU a call,
mostly in waking that thread and in the two threads taking turns with the interpreter lock; in batches the access
log costs a few microseconds a line on the loop. A line reaches the stream at most ``interval`` seconds late; what
is still gathered when the process is killed with SIGKILL is lost, as it was in the queue before.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TextIO


class BatchWriter(logging.Handler):
    """Gathers records from any thread; writes them in batches from a thread of its own.

    Args:
        stream: where the lines go.
        interval: seconds between batches.
    """

    def __init__(self, stream: TextIO, interval: float = 0.05) -> None:
        super().__init__()
        self.stream, self.interval = stream, interval
        self._records: collections.deque[logging.LogRecord] = collections.deque()  # appends are thread-safe
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """Gather the record as it is: filtering and formatting are the writer's work, not the caller's."""
        self._records.append(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.write_gathered()
        self.write_gathered()

    def write_gathered(self) -> None:
        lines = []
        while self._records:
            record = self._records.popleft()
            try:
                if self.filter(record):
                    lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Write what has gathered and stop the thread."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        super().close()
