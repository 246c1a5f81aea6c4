"""The stage runner: resume, shards, status of failed and crashing items, Dask execution."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from augmentface.errors import ManifestBusyError, UsageError
from augmentface.manifest import Column, ManifestWriter, Schema, read_manifest
from augmentface.manifest_parts import WriterLock
from augmentface.stages.execution import (
    Execution,
    Shard,
    cached,
    jobqueue_cluster,
    read_cluster_file,
)
from augmentface.stages.runner import Stage, attempt, run_stage

SCHEMA = Schema(
    "toy",
    1,
    ("image_path",),
    (Column("image_path", "string", "item", nullable=False), Column("length", "int64", "len")),
)


def _work(item: str) -> list[dict]:
    if item.startswith("bad"):
        raise ValueError("cannot read it")
    if item.startswith("crash"):
        os.kill(os.getpid(), signal.SIGKILL)  # a native crash: the process is gone
    calls = cached("calls", lambda: [0])
    calls[0] += 1
    return [{"image_path": item, "length": len(item), "status": "ok", "error": None}]


@dataclass(frozen=True)
class ToyTask:
    def __call__(self, items):
        return [attempt(_work, item, item) for item in items]


def _stage(path: Path, params: dict | None = None) -> Stage:
    return Stage(
        name="toy",
        schema=SCHEMA,
        path=path,
        params=params or {"job": 1},
        seed=None,
        face_model_id=None,
        task=ToyTask(),
        image_of=lambda item: item,
        resume_key=lambda item: (item,),
        failure_rows=lambda item, status, message: [
            {"image_path": item, "status": status, "error": message}
        ],
        every_n=3,
    )


def _rows(path: Path) -> dict[str, tuple]:
    df = read_manifest(path, SCHEMA, run_first="toy").df
    assert not df.duplicated("image_path").any()
    return {
        r.image_path: (r.status, r.length if r.status == "ok" else None)
        for r in df.itertuples()
    }


ITEMS = [f"img{i:02d}.jpg" for i in range(10)]


def test_a_failed_item_gets_its_status_and_a_rerun_redoes_only_it(tmp_path):
    path = tmp_path / "toy.parquet"
    report = run_stage(_stage(path), [*ITEMS, "bad.jpg"], Execution(), quiet=True)
    assert (report.done, report.n_failed, report.failed["failed"]) == (10, 1, 1)
    assert "bad.jpg: unexpected ValueError: cannot read it" in report.examples["failed"]
    again = run_stage(_stage(path), [*ITEMS, "bad.jpg"], Execution(), quiet=True)
    assert (again.skipped, again.done, again.n_failed) == (10, 0, 1)
    rows = _rows(path)
    assert len(rows) == 11 and rows["bad.jpg"][0] == "failed"


def test_shards_together_equal_the_whole_and_never_void_each_other(tmp_path):
    whole = tmp_path / "whole.parquet"
    run_stage(_stage(whole), ITEMS, Execution(), quiet=True)
    sharded = tmp_path / "sharded.parquet"
    counts = [
        run_stage(_stage(sharded), ITEMS, Execution(shard=Shard(i, 2)), quiet=True).done
        for i in range(2)
    ]
    assert sum(counts) == len(ITEMS) and min(counts) > 0  # both shards had work
    assert _rows(sharded) == _rows(whole)
    # a shard run again skips its rows; a whole run afterwards resumes every row
    assert run_stage(_stage(sharded), ITEMS, Execution(shard=Shard(0, 2)), quiet=True).done == 0
    assert run_stage(_stage(sharded), ITEMS, Execution(), quiet=True).skipped == len(ITEMS)


def test_a_shard_refuses_a_manifest_of_another_job(tmp_path):
    path = tmp_path / "toy.parquet"
    run_stage(_stage(path, {"job": 1}), ITEMS, Execution(), quiet=True)
    with pytest.raises(UsageError, match="another job"):
        run_stage(_stage(path, {"job": 2}), ITEMS, Execution(shard=Shard(0, 2)), quiet=True)
    assert len(_rows(path)) == len(ITEMS)  # nothing was voided


def test_shards_share_a_manifest_but_not_a_shard_nor_with_a_whole_run(tmp_path):
    path = tmp_path / "toy.parquet"
    first = WriterLock(path, shard="0/2")
    second = WriterLock(path, shard="1/2")  # another shard writes beside it
    with pytest.raises(ManifestBusyError, match=f"pid {os.getpid()}"):
        WriterLock(path, shard="0/2")
    with pytest.raises(ManifestBusyError):
        ManifestWriter(path, SCHEMA, params={}, seed=None, face_model_id=None)
    first.release()
    second.release()
    WriterLock(path).release()  # free again once the shards are done


@pytest.mark.parametrize(
    ("text", "message"), [("2/2", "0 <= I < N"), ("1", "I/N"), ("a/b", "I/N"), ("0/0", "I < N")]
)
def test_bad_shards_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        Shard.parse(text)


def test_shards_split_by_image_and_cover_every_image():
    images = [f"clip{i}.mp4#frame={j}" for i in range(5) for j in range(3)]
    owners = [[s for s in range(3) if Shard(s, 3).holds(image)] for image in images]
    assert all(len(o) == 1 for o in owners)


def test_execution_options_are_exclusive():
    with pytest.raises(UsageError, match="--workers, --shard"):
        Execution(workers=2, shard=Shard(0, 2))


def test_a_local_cluster_gives_the_same_rows_and_a_crashing_item_costs_one_row(tmp_path):
    """An item that kills its worker process (a native crash) is found by splitting its
    task, and gets status ``crashed``; the run goes on and keeps every other row."""
    items = [*ITEMS, "bad.jpg", "crash.jpg"]
    in_process = tmp_path / "one.parquet"
    run_stage(_stage(in_process), [i for i in items if i != "crash.jpg"], Execution(), True)
    on_dask = tmp_path / "dask.parquet"
    execution = Execution(workers=2, rows_per_task=4, retries=0)
    report = run_stage(_stage(on_dask), items, execution, quiet=True)
    assert (report.done, report.failed["failed"], report.failed["crashed"]) == (10, 1, 1)
    rows = _rows(on_dask)
    assert rows.pop("crash.jpg")[0] == "crashed"
    assert rows == _rows(in_process)


@pytest.mark.parametrize(
    ("example", "directive"), [("cluster-slurm.yaml", "#SBATCH"), ("cluster-pbs.yaml", "#PBS")]
)
def test_the_example_cluster_files_make_job_scripts(example, directive):
    """The documented batch-queue path, without a queue: the job script dask-jobqueue would
    submit asks for the file's resources and starts recycled Dask workers."""
    path = Path(__file__).parents[1] / "examples" / example
    system, jobs, settings = read_cluster_file(path)
    assert jobs >= 1 and system in example
    with jobqueue_cluster(path) as cluster:
        script = cluster.job_script()
    assert directive in script and "distributed.cli.dask_worker" in script
    assert "--lifetime 3600s" in script and "--lifetime-restart" in script
    assert f"--nworkers {settings['processes']}" in script
    assert "source ~/augmentface/.venv/bin/activate" in script


def test_a_bad_cluster_file_is_one_clear_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("system: kubernetes\n")
    with pytest.raises(UsageError, match="system must be one of slurm, pbs, sge, lsf"):
        read_cluster_file(path)
    path.write_text("system: slurm\njobs: 0\n")
    with pytest.raises(UsageError, match="jobs must be an integer >= 1"):
        read_cluster_file(path)
    with pytest.raises(UsageError, match="cannot read the cluster file"):
        read_cluster_file(tmp_path / "missing.yaml")


def test_the_array_job_example_runs_one_shard_per_task():
    script = (Path(__file__).parents[1] / "examples" / "array-job.sbatch").read_text()
    assert "#SBATCH --array=" in script
    assert '--shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"' in script


def test_items_are_pulled_as_the_work_goes_never_all_at_once(tmp_path, monkeypatch):
    """Held rows stay flat: the runner takes an item from its (streamed) upstream only when
    the one before is done, and the writer holds at most a checkpoint's rows."""
    produced = [0]

    def stream():
        for i in range(2_000):
            produced[0] += 1
            yield f"img{i:05d}.jpg"

    ahead = []

    class Watching(ManifestWriter):
        def add(self, row):
            ahead.append(produced[0] - int(row["image_path"][3:8]))
            assert len(self._rows) < self.every_n
            super().add(row)

    monkeypatch.setattr("augmentface.stages.runner.ManifestWriter", Watching)
    report = run_stage(_stage(tmp_path / "toy.parquet"), stream(), Execution(), True)
    assert report.done == 2_000
    assert max(ahead) <= 1


def test_a_long_name_is_cut_with_a_hash_and_stays_unique():
    from augmentface.stages.common import MAX_STEM_BYTES, sample_name

    assert sample_name("/d/a.jpg", 0, "AU12=3", 1).endswith("_f0_AU12-3_s1")  # not cut
    long = "/d/" + "ü" * 240 + ".jpg"
    names = {sample_name(long, 0, "AU12=3", s) for s in range(3)}
    assert len(names) == 3
    assert all(len(n.encode()) <= MAX_STEM_BYTES and n.startswith("üü") for n in names)


# Allocates and frees an image-sized float array 50 times on a thread, as a Dask task does, and
# prints the thread's minor page faults; "tuned" first applies the worker plugin's setting.
# Transparent huge pages are off for it (prctl PR_SET_THP_DISABLE = 41): where the kernel finds
# free 2 MiB pages an array faults in 3 of them instead of 1,536 small ones, and the count that
# tells a fresh mapping from reused memory is gone (1 run in 12 read 201 faults, not ~25,000).
_FAULTS = """
import ctypes, resource, sys, threading
import numpy as np
from augmentface.stages.worker_plugin import reuse_freed_arrays
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
if sys.argv[1] == "tuned":
    reuse_freed_arrays()
faults = []
def work():
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(50):
        array = np.ones((512, 512, 3))
        del array
    faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(faults[0])
"""


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and hasattr(resource, "RUSAGE_THREAD")),
    reason="glibc's mallopt and per-thread page-fault counts are Linux features",
)
def test_workers_reuse_freed_arrays_under_dasks_trim_setting():
    # Dask's nanny starts workers with this variable; it made every array a fresh mapping.
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}

    def faults(mode: str) -> int:
        run = subprocess.run(
            [sys.executable, "-c", _FAULTS, mode], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    plain, tuned = faults("plain"), faults("tuned")
    pages_of_one_array = 512 * 512 * 3 * 8 // 4096
    assert plain > 10 * pages_of_one_array  # the pages fault in again, array after array
    assert tuned < 2 * pages_of_one_array  # only the first array's pages fault in


# A worker process pinned to core 0 (as one started by a pinned thread is), set up by the worker
# plugin with the command's cores: it must move to the core of its index, not stay on core 0.
_PINNING = """
import os, sys
from types import SimpleNamespace
from augmentface.stages.worker_plugin import ModelCache
os.sched_setaffinity(0, {0})
cores = tuple(int(c) for c in sys.argv[1:])
ModelCache(cores).setup(SimpleNamespace(name=1))
print(sorted(os.sched_getaffinity(0)))
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs two cores and Linux's affinity calls",
)
def test_a_worker_is_pinned_to_the_commands_cores_not_to_its_inherited_ones():
    cores = sorted(os.sched_getaffinity(0))[:2]
    run = subprocess.run(
        [sys.executable, "-c", _PINNING, *map(str, cores)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str([cores[1]])  # worker 1 on the command's second core
