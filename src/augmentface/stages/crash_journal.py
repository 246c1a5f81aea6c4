"""Native crashes of an in-process run: the item in hand when the process died, and its status.

A crash inside native code (MediaPipe, OpenCV, dlib) ends the whole process; no Python
handler runs. On Dask a dead worker is replaced and its item gets status ``crashed``
(:mod:`.runner`); a run in this process cannot survive it, but its *next* run can finish:

- before each item the runner writes the item's key and image into ``_inflight`` (one small
  ``pwrite``, no rename: a journal, never a completion marker);
- :mod:`faulthandler` writes the fatal signal into ``_fatal`` from its C-level handler (it
  runs where Python cannot: SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL);
- the next run finds both: the item gets a line in ``_crashed`` and, from then on, the row
  status ``crashed`` without being tried again, so a folder that holds an image that aborts
  the process still finishes. A process killed otherwise (``kill -9``, the machine) leaves
  ``_fatal`` empty, and its item is simply done again.

The files live in the manifest directory, one set per lock scope (the whole run, or one
shard: ``_inflight-I-of-N``); a new job (other parameters) starts with no record. Remove
``_crashed*`` to try those images again (after an upgrade, say).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import sys
from collections.abc import Hashable, Iterator
from pathlib import Path

from augmentface.atomic import atomic_write_text
from augmentface.manifest_index import key_hash

_PREFIX = "Fatal Python error: "


class CrashJournal:
    """The crash record of one stage's manifest for one lock scope (see the module).

    Parameters
    ----------
    directory : Path
        The manifest directory (it exists: the writer holds its lock).
    shard : str or None
        ``"I/N"`` for a shard's run, None for a whole run.
    fresh : bool
        The manifest holds another job's rows: their crash records are dropped with them.
    """

    def __init__(self, directory: Path, shard: str | None, *, fresh: bool) -> None:
        suffix = "" if shard is None else "-" + shard.replace("/", "-of-")
        self._inflight = directory / f"_inflight{suffix}"
        self._fatal = directory / f"_fatal{suffix}"
        self._record = directory / f"_crashed{suffix}"
        if fresh and shard is None:
            for path in directory.glob("_crashed*"):
                path.unlink(missing_ok=True)
        self._note_last_crash()
        self.crashed = self._read_records(directory)

    def _note_last_crash(self) -> None:
        """Turn a previous run's in-flight item and fatal signal into a record."""
        try:
            fatal = self._fatal.read_text(errors="replace")
            inflight = self._inflight.read_text()
        except FileNotFoundError:
            return
        signal = next((line for line in fatal.splitlines() if line.startswith(_PREFIX)), None)
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if signal:
                item = json.loads(inflight)  # a kill mid-write leaves it torn: no record
                entry = {"key": int(item["key"]), "image": str(item["image"])}
                entry["signal"] = signal.removeprefix(_PREFIX)
                lines = self._record.read_text() if self._record.exists() else ""
                atomic_write_text(self._record, lines + json.dumps(entry) + "\n")
        self._fatal.unlink(missing_ok=True)
        self._inflight.unlink(missing_ok=True)

    @staticmethod
    def _read_records(directory: Path) -> dict[int, str]:
        """Key hash -> the fatal signal, of every item recorded in any scope's record."""
        crashed: dict[int, str] = {}
        for path in sorted(directory.glob("_crashed*")):
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    crashed[int(entry["key"])] = str(entry["signal"])
        return crashed

    def message(self, key: Hashable, image: str) -> str | None:
        """The row error of an item that crashed the process in an earlier run, else None."""
        signal = self.crashed.get(_key_id(key))
        if signal is None:
            return None
        return (
            f"{image}: the process died on it in an earlier run ({signal}); not tried again "
            f"(remove {self._record.parent}/_crashed* to retry)"
        )

    @contextlib.contextmanager
    def watching(self) -> Iterator[CrashJournal]:
        """Journal items and catch fatal signals for the duration of the run."""
        was_enabled = faulthandler.is_enabled()
        try:
            with open(self._fatal, "w") as fatal, open(self._inflight, "wb") as inflight:
                self._fd = inflight.fileno()
                faulthandler.enable(file=fatal, all_threads=False)
                try:
                    yield self
                finally:
                    faulthandler.disable()
                    if was_enabled and sys.__stderr__ is not None:  # pytest, -X faulthandler
                        faulthandler.enable(file=sys.__stderr__)
        finally:  # the process lives: nothing crashed
            self._fatal.unlink(missing_ok=True)
            self._inflight.unlink(missing_ok=True)

    def begin(self, key: Hashable, image: str) -> None:
        """Record the item of ``key`` (of ``image``) as the one in hand, replacing the last."""
        data = json.dumps({"key": _key_id(key), "image": image}).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))


def _key_id(key: Hashable) -> int:
    return key_hash(key if isinstance(key, tuple) else (key,))
