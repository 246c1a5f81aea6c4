"""The Dask worker plugin of augmentface (imported only when a stage runs on Dask)."""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from augmentface.stages.execution import close_cached


class ModelCache(WorkerPlugin):
    """Closes a worker's cached models (:func:`.execution.cached`) when the worker stops, so
    a worker that Dask retires (``lifetime``) releases MediaPipe's graphs."""

    name = "augmentface-models"

    def setup(self, worker: Any) -> None:
        close_cached()  # a reused process starts from no models

    def teardown(self, worker: Any) -> None:
        close_cached()
