"""The Dask worker plugin of augmentface (imported only when a stage runs on Dask)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from augmentface.stages.execution import close_cached


def pin_process(cores: set[int]) -> None:
    """Pin every thread of this process to ``cores`` (threads started later inherit it)."""
    for task in Path("/proc/self/task").iterdir():
        os.sched_setaffinity(int(task.name), cores)


#: glibc's ``mallopt`` parameter numbers (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Allocations below this come from the heap and are reused; glibc's largest allowed value on
#: 64-bit systems (half its 64 MiB heap size).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free memory a heap keeps at its top instead of handing it back to the system.
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def reuse_freed_arrays() -> None:
    """Make glibc serve a render's large arrays from memory it already holds.

    Dask starts workers with ``MALLOC_TRIM_THRESHOLD_`` at 64 KiB, which also freezes glibc's
    mmap threshold at 128 KiB: every image-sized array was a fresh ``mmap``, or heap memory
    just handed back, whose pages fault in again on first touch. Measured on render (2,000
    targets, the task thread's CPU): 670 page faults and 12.2 ms per row in a worker against
    2.4 faults and 9.0 ms in one process; with both thresholds set here, 8 faults and 9.3 ms
    (the mmap threshold alone left 15 faults: freed memory at a heap's top was still handed
    back). Not glibc (macOS, musl): nothing to do.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


class ModelCache(WorkerPlugin):
    """A worker's set-up for augmentface's tasks.

    - Closes the worker's cached models (:func:`.execution.cached`) when it stops, so a worker
      that Dask retires (``lifetime``) releases MediaPipe's graphs.
    - OpenCV runs single-threaded: the workers are the parallelism.
    - glibc keeps freed image-sized arrays for reuse (:func:`reuse_freed_arrays`).
    - With ``cores`` (a local cluster: the cores the command's main thread may use), worker
      ``i`` is pinned to the i-th of them: MediaPipe's and OpenCV's own threads then stay on
      their worker's core instead of contending with the other workers' (measured on 2 cores:
      unpinned workers were no faster than one process). The cores come from the command,
      not from the worker's own affinity: a worker inherits the affinity of the thread that
      started it, which may be narrower (a benchmark pinned to one core, then widened for its
      workers, put both on core 0: 2,000 video frames in 39.5 s against 20.3 s).
    """

    name = "augmentface-models"

    def __init__(self, cores: tuple[int, ...] | None = None) -> None:
        self.cores = cores

    def setup(self, worker: Any) -> None:
        import cv2

        close_cached()  # a reused process starts from no models
        cv2.setNumThreads(1)
        reuse_freed_arrays()
        if self.cores and isinstance(worker.name, int) and hasattr(os, "sched_setaffinity"):
            pin_process({self.cores[worker.name % len(self.cores)]})

    def teardown(self, worker: Any) -> None:
        close_cached()
