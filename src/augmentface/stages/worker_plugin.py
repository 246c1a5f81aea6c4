"""The Dask worker plugin of augmentface (imported only when a stage runs on Dask)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from augmentface.stages.execution import close_cached


def pin_process(cores: set[int]) -> None:
    """Pin every thread of this process to ``cores`` (threads started later inherit it)."""
    for task in Path("/proc/self/task").iterdir():
        os.sched_setaffinity(int(task.name), cores)


class ModelCache(WorkerPlugin):
    """A worker's set-up for augmentface's tasks.

    - Closes the worker's cached models (:func:`.execution.cached`) when it stops, so a worker
      that Dask retires (``lifetime``) releases MediaPipe's graphs.
    - OpenCV runs single-threaded: the workers are the parallelism.
    - With ``pin_cores`` (a local cluster), worker ``i`` is pinned to the i-th core this
      machine gives the run: MediaPipe's and OpenCV's own threads then stay on their worker's
      core instead of contending with the other workers' (measured on 2 cores: unpinned
      workers were no faster than one process).
    """

    name = "augmentface-models"

    def __init__(self, pin_cores: bool = False) -> None:
        self.pin_cores = pin_cores

    def setup(self, worker: Any) -> None:
        import cv2

        close_cached()  # a reused process starts from no models
        cv2.setNumThreads(1)
        if self.pin_cores and isinstance(worker.name, int) and hasattr(os, "sched_setaffinity"):
            cores = sorted(os.sched_getaffinity(0))
            pin_process({cores[worker.name % len(cores)]})

    def teardown(self, worker: Any) -> None:
        close_cached()
