"""The one stage runner: resume, shards, per-row status, progress, checkpoints and execution.

A stage module says what one row's work is (a picklable :class:`RowTask` that turns a few
upstream items into manifest rows) and what its run writes (a :class:`Stage`); everything
else is here, the same for every stage:

- **resume**: items whose rows are already ``ok`` in a manifest of the same job are skipped;
- **shards**: with ``--shard I/N`` only the items of that shard are done, and the shards'
  parts share one manifest (:class:`.manifest.ManifestWriter` with ``shard``);
- **status**: an item whose work raises gets a row with the error's status and one line; an
  item that kills its worker process (a native crash) gets status ``crashed``;
- **progress and summary**: a progress bar and a :class:`.common.StageReport`;
- **execution**: in this process, or as Dask tasks of ``rows_per_task`` items
  (:mod:`.execution`), at most a few tasks ahead of the writer, so memory is set by the task
  size and the checkpoint size, never by the dataset.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from augmentface.errors import UsageError
from augmentface.manifest import STATUS_OK, ManifestWriter, Schema
from augmentface.manifest_index import KeySet
from augmentface.manifest_parts import live_parts
from augmentface.stages.common import StageReport, progress_bar, row_failure, same_job
from augmentface.stages.crash_journal import CrashJournal
from augmentface.stages.execution import Execution, close_cached, dask_client

Item = TypeVar("Item")

#: What a task gives back for one item: its rows, or (status, one-line message) on failure.
Outcome = tuple[list[dict[str, Any]], tuple[str, str] | None]

#: The status of an item whose worker process died each time it was tried.
CRASHED = "crashed"
#: The status of a finished row that a quality gate refused (counted apart from failures).
REJECTED = "rejected"


class RowTask(Protocol[Item]):
    """A stage's work on a few items; runs in a worker process, so it must pickle (a frozen
    dataclass of settings) and load its models through :func:`.execution.cached`."""

    def __call__(self, items: Sequence[Item]) -> list[Outcome]: ...


def attempt(work: Callable[[Item], list[dict[str, Any]]], item: Item, where: str) -> Outcome:
    """``work(item)`` as an :data:`Outcome`: a failure becomes a status, never an exception,
    so one bad item costs one row and the task's other items are kept."""
    try:
        return work(item), None
    except Exception as exc:  # every failure of one item is that item's status
        return [], row_failure(exc, where)


@dataclass(frozen=True)
class Stage(Generic[Item]):
    """One run of a stage: the manifest it writes, its provenance and how its items map to
    rows. The callables run in the driver only; :attr:`task` runs on the workers.

    Parameters
    ----------
    name : str
        Stage name (progress bar, report).
    schema : Schema
        Schema of the manifest written.
    path : Path
        The manifest directory.
    params, seed, face_model_id
        Provenance (:class:`.manifest.ManifestWriter`); a manifest with other ``params`` is
        another job and is not resumed.
    task : RowTask
        The per-item work.
    image_of : callable
        The image (path or frame reference) of an item: shard membership and messages.
    resume_key : callable
        An item's key in the manifest it writes: an item whose key has an ``ok`` row there
        is done.
    failure_rows : callable
        ``(item, status, message) -> rows`` recorded for a failed item.
    done_key : tuple of str, optional
        The key columns that say an item is done, when not the schema's whole key
        (fit3dmm's rows are faces, its items images: ``("image_path",)``).
    file_column : str, optional
        The column naming the file an ``ok`` row wrote; a row whose file is gone is redone.
    every_n : int
        Rows per checkpoint (manifest part).
    """

    name: str
    schema: Schema
    path: Path
    params: Mapping[str, Any]
    seed: int | None
    face_model_id: str | None
    task: RowTask[Item]
    image_of: Callable[[Item], str]
    resume_key: Callable[[Item], Hashable]
    failure_rows: Callable[[Item, str, str], list[dict[str, Any]]]
    done_key: tuple[str, ...] | None = None
    file_column: str | None = None
    every_n: int = 1000
    #: Items a Dask task does, unless ``Execution.rows_per_task`` says otherwise. A task costs
    #: the scheduler's process about 13 ms whatever it holds (measured with a 2-worker local
    #: cluster on 2 cores), so a stage whose item takes ~10 ms (render, blend) sends more of
    #: them per task than one whose item takes ~100 ms (fit3dmm).
    rows_per_task: int = 16


def run_stage(
    stage: Stage[Item],
    items: Iterable[Item],
    execution: Execution,
    quiet: bool,
    total: int | None = None,
) -> StageReport:
    """Do every item of ``items`` not done yet, write the stage's manifest, report counts.

    ``items`` is consumed once, lazily: a stage may stream them from its upstream manifest,
    and only a checkpoint's rows and a window of tasks are ever held. ``total`` (items,
    skipped ones included) sizes the progress bar.

    Raises
    ------
    UsageError
        A shard run over a manifest that holds another job's rows (shards never void each
        other's parts, so the old manifest must be removed first).
    ManifestBusyError
        Another run writes the manifest (for a shard: the same shard, or a whole run).
    """
    shard = execution.shard
    resuming = same_job(stage.path, stage.params)
    if shard is not None and not resuming and stage.path.is_dir() and live_parts(stage.path):
        raise UsageError(
            f"{stage.path}: holds rows of another job (other parameters); shards add to a "
            "manifest and never replace it: remove it, or run once without --shard"
        )
    report = StageReport(stage.name, stage.path)
    with ManifestWriter(
        stage.path,
        stage.schema,
        resume=resuming,
        params=stage.params,
        seed=stage.seed,
        face_model_id=stage.face_model_id,
        every_n=stage.every_n,
        shard=None if shard is None else str(shard),
        synced_column=stage.file_column,
    ) as writer:
        done = (
            KeySet(stage.path, stage.schema, stage.done_key, stage.file_column)
            if resuming
            else KeySet.empty()
        )

        def todo() -> Iterator[Item]:
            for item in items:
                if shard is not None and not shard.holds(stage.image_of(item)):
                    continue
                if stage.resume_key(item) in done:
                    report.skipped += 1
                else:
                    yield item

        pending = todo()
        first = next(pending, None)
        if first is None:  # nothing to do starts no cluster
            return report
        pending = itertools.chain([first], pending)
        with (
            dask_client(execution) as client,
            progress_bar(stage.name, total, quiet) as show,
        ):
            if client is None:
                # another job's rows are about to be replaced: so is its crash record (a run
                # that died before its first part left none, and keeps its record)
                another_job = not resuming and bool(live_parts(stage.path))
                journal = CrashJournal(
                    stage.path, None if shard is None else str(shard), fresh=another_job
                )
                outcomes = _in_process(stage, pending, journal)
            else:
                outcomes = _on_dask(client, stage, pending, execution)
            for count, (item, (rows, failure)) in enumerate(outcomes, 1):
                _record(stage, writer, report, item, rows, failure)
                show(count + report.skipped)
    return report


def _record(
    stage: Stage[Item],
    writer: ManifestWriter,
    report: StageReport,
    item: Item,
    rows: list[dict[str, Any]],
    failure: tuple[str, str] | None,
) -> None:
    if failure is not None:
        status, message = failure
        for row in stage.failure_rows(item, status, message):
            writer.add(row)
        report.fail(status, message)
    for row in rows:
        writer.add(row)
        if row["status"] == STATUS_OK:
            report.ok()
        elif row["status"] == REJECTED:  # finished, but refused by a quality gate
            report.reject(f"{stage.image_of(item)}: {row['error']}")
        else:  # one of an item's several rows failed (evaluate: an output of a face)
            report.fail(row["status"], row["error"])


def _in_process(
    stage: Stage[Item], todo: Iterator[Item], journal: CrashJournal
) -> Iterator[tuple[Item, Outcome]]:
    """Outcomes of the items done one by one in this process. A native crash ends the process;
    the journal makes the next run give that item status ``crashed`` instead of dying on it
    again (:mod:`.crash_journal`)."""
    try:
        with journal.watching():
            for item in todo:
                key, image = stage.resume_key(item), stage.image_of(item)
                if (message := journal.message(key, image)) is not None:
                    yield item, ([], (CRASHED, message))
                    continue
                journal.begin(key, image)
                yield item, stage.task([item])[0]
    finally:
        close_cached()  # release MediaPipe's graphs now, not at interpreter exit


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class _Chunk:
    """A task's items (or its outcomes), opaque to Dask and pickled in one piece.

    ``client.submit`` walks every list, tuple and dict in its arguments looking for futures,
    ~100 calls a row of nested row dicts (2.5 s of the driver's CPU over 10,000 renders); it
    leaves other objects alone. Dask's own pickling would also send each NumPy array of the
    rows as a buffer of its own, several a row; one pickle of the whole chunk carries them in
    one (the one pass over 12,000 targets with two workers: the driver's CPU 8.4-9.7 s ->
    6.9-7.3 s, with blend's larger tasks).
    """

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __reduce__(self) -> tuple[Callable[[bytes], _Chunk], tuple[bytes]]:
        return _unpickle_chunk, (pickle.dumps(self.items, protocol=pickle.HIGHEST_PROTOCOL),)


def _unpickle_chunk(data: bytes) -> _Chunk:
    return _Chunk(pickle.loads(data))


def _run_chunk(task: RowTask[Item], chunk: _Chunk) -> _Chunk:
    return _Chunk(task(chunk.items))


def _on_dask(
    client: Any, stage: Stage[Item], todo: Iterator[Item], execution: Execution
) -> Iterator[tuple[Item, Outcome]]:
    """Outcomes of Dask tasks of ``rows_per_task`` items (the execution's, else the
    stage's), in the order they finish.

    Only a window of tasks is in flight (twice the workers, plus two), so a dataset of
    millions of rows never sits in the scheduler's memory. A task whose workers keep dying
    (Dask's ``KilledWorker``, after ``allowed-failures`` attempts on other workers) is split
    into single items; an item that alone still kills its worker gets status ``crashed``.
    """
    from distributed import KilledWorker, as_completed

    workers = max(1, sum(client.nthreads().values()), execution.workers)
    window = 2 * workers + 2
    chunks = _chunks(todo, execution.rows_per_task or stage.rows_per_task)
    pending: dict[Any, list[Item]] = {}
    queue = as_completed()

    def submit(chunk: list[Item]) -> None:
        future = client.submit(
            _run_chunk, stage.task, _Chunk(chunk), pure=False, retries=execution.retries
        )
        pending[future] = chunk
        queue.add(future)

    for chunk in itertools.islice(chunks, window):
        submit(chunk)
    for future in queue:
        chunk = pending.pop(future)
        try:
            outcomes = future.result().items
        except KilledWorker as exc:
            if len(chunk) > 1:
                for item in chunk:  # find the one item that kills its worker
                    submit([item])
                continue
            where = stage.image_of(chunk[0])
            outcomes = [([], (CRASHED, f"{where}: its worker process died each try ({exc})"))]
        except Exception as exc:  # a task that failed as a whole (it cannot be unpickled, ...)
            outcomes = [([], row_failure(exc, stage.image_of(item))) for item in chunk]
        finally:
            future.release()
        yield from zip(chunk, outcomes, strict=True)
        for chunk in itertools.islice(chunks, 1):
            submit(chunk)
