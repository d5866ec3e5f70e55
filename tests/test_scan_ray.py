"""The scan on Ray Data (``--engine ray``): the local engine's records, resumable, and no file can stop it.

One local Ray session serves the whole module (starting Ray costs ~10 s, and each run's actors load
the detector once more), so the runs that need Ray are few and marked ``slow``; what the engine
does around them -- rows, the output folder, manifests, usage errors, the actor's last safety net --
is tested without Ray.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from detector.batch import ray_engine, scan
from detector.batch.records import ScanRecord

GOOD = ["astronaut.jpg", "hopper.png", "coffee.jpg"]  # two faces and a photo without one
BROKEN = ["notes.jpg", "truncated.jpg"]  # a text file named .jpg, a JPEG cut short
VIDEO = "clip.mp4"


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut, hopper, no_face) -> Path:
    root = tmp_path_factory.mktemp("ray_media")
    (root / "sub").mkdir()
    Image.fromarray(astronaut).save(root / "astronaut.jpg", quality=92)
    Image.fromarray(hopper).save(root / "sub" / "hopper.png")
    Image.fromarray(no_face).save(root / "coffee.jpg", quality=92)
    (root / "notes.jpg").write_text("a text file wearing a .jpg name\n")
    data = (root / "astronaut.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    frame = cv2.cvtColor(cv2.resize(astronaut, (256, 256)), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(root / "sub" / VIDEO), cv2.VideoWriter_fourcc(*"mp4v"), 5, (256, 256))
    for i in range(6):
        writer.write(np.roll(frame, 4 * i, axis=1))
    writer.release()
    return root


@pytest.fixture(scope="module")
def extra(tmp_path_factory, astronaut) -> Path:
    """Files added after the first run: what --resume must score, and nothing else."""
    root = tmp_path_factory.mktemp("ray_extra")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(root / "mirrored.jpg", quality=90)
    (root / "empty.png").write_bytes(b"")
    return root


def run_cli(argv: list[str], detector=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = scan.main(argv, detector=detector)
    return code, out.getvalue(), err.getvalue()


def by_path(stdout: str) -> dict[str, dict]:
    records = [json.loads(line) for line in stdout.splitlines()]
    out = {r["path"]: r for r in records}
    assert len(out) == len(records), "a file got two records"
    return out


def assert_same_record(got, want, where: str = "record") -> None:
    """Equal key for key; probabilities (any float) to 1e-4."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: keys {got.keys()} != {want.keys()}"
        for k in want:
            assert_same_record(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_record(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, float) and math.isclose(got, want, abs_tol=1e-4), f"{where}: {got} != {want}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def local_records(media, extra, detector) -> dict[str, dict]:
    code, stdout, _ = run_cli([str(media), str(extra), "--frames", "3", "--no-progress"], detector)
    return by_path(stdout)


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def first_run(ray_session, media, tmp_path_factory):
    """The folder scanned on Ray by two actors, JSON lines to stdout and to DIR."""
    out = tmp_path_factory.mktemp("ray_out")
    code, stdout, stderr = run_cli([str(media), "--engine", "ray", "--actors", "2", "--frames", "3", "--out", str(out),
                                    "--no-progress"])
    written = "\n".join(line for f in out.glob("records-*.jsonl") for line in f.read_text().splitlines())
    return code, stdout, stderr, out, written


# ---------------------------------------------------------------------------- on Ray


@pytest.mark.slow
def test_ray_records_equal_the_local_engines_and_bad_files_do_not_stop_the_job(first_run, local_records, media):
    code, stdout, stderr, out, written = first_run
    got = by_path(stdout)
    names = {Path(p).name for p in got}
    assert names == set(GOOD + BROKEN + [VIDEO])  # every file, the broken ones included
    for path, rec in got.items():
        assert_same_record(rec, local_records[path], Path(path).name)
    for name in BROKEN:
        rec = got[str(next(media.rglob(name)))]
        assert rec["label"] is None and rec["error"] and "Traceback" not in rec["error"]
    video = got[str(media / "sub" / VIDEO)]
    assert video["kind"] == "video" and video["error"] is None and len(video["frames"]) == 3  # videos run on Ray too
    fake, unreadable = any(r["label"] == "fake" for r in got.values()), any(r["error"] for r in got.values())
    assert code == (scan.EXIT_FAKE_FOUND if fake else scan.EXIT_UNREADABLE if unreadable else scan.EXIT_CLEAN)
    assert by_path(written) == got  # the output folder holds exactly what stdout showed
    assert "2 actors" in stderr and "6 files" in stderr


@pytest.mark.slow
def test_resume_scores_only_the_new_files(first_run, local_records, media, extra):
    out = first_run[3]
    code, stdout, stderr = run_cli([str(media), str(extra), "--engine", "ray", "--actors", "1", "--frames", "3",
                                    "--out", str(out), "--resume", "--no-progress"])
    got = by_path(stdout)
    assert {Path(p).name for p in got} == {"mirrored.jpg", "empty.png"}
    for path, rec in got.items():
        assert_same_record(rec, local_records[path], Path(path).name)
    assert "6 files already have a record" in stderr
    everything = by_path("\n".join(line for f in out.glob("records-*.jsonl") for line in f.read_text().splitlines()))
    assert everything.keys() == local_records.keys()  # each file once, over both runs


@pytest.mark.slow
def test_parquet_output_holds_one_row_per_file_with_the_json_record(ray_session, media, extra, local_records, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "parquet"
    code, stdout, stderr = run_cli([str(media), str(extra), str(tmp_path / "missing.jpg"), "--engine", "ray",
                                    "--actors", "1", "--frames", "3", "--format", "parquet", "--out", str(out),
                                    "--no-progress"])
    assert stdout == ""  # the records are in the folder
    table = pq.read_table(sorted(out.glob("*.parquet")))
    assert tuple(table.column_names) == ray_engine.COLUMNS
    rows = {r["path"]: r for r in table.to_pylist()}
    assert len(rows) == table.num_rows == len(local_records) + 1
    assert "does not exist" in rows[str(tmp_path / "missing.jpg")]["error"]  # the scan says so in words
    for path, want in local_records.items():
        row = rows[path]
        assert_same_record(json.loads(row["record"]), want, Path(path).name)
        assert (row["label"], row["error"], row["n_faces"]) == (want["label"], want["error"], want["n_faces"])
    fake, unreadable = any(r["label"] == "fake" for r in rows.values()), any(r["error"] for r in rows.values())
    assert code == (scan.EXIT_FAKE_FOUND if fake else scan.EXIT_UNREADABLE if unreadable else scan.EXIT_CLEAN)


# ---------------------------------------------------------------------------- around Ray


def test_a_record_row_carries_the_local_json_line(astronaut):
    rec = ScanRecord("a/b.jpg", "image", 0.73, "fake", [{"box": [1, 2, 3, 4], "p_fake": 0.73}], "1 face found.")
    row = ray_engine.record_row(rec)
    assert tuple(row) == ray_engine.COLUMNS
    assert json.loads(row["record"]) == rec.to_dict() and row["crops"] == 1 and row["n_faces"] == 1
    no_face = ray_engine.record_row(ScanRecord("c.jpg", "image", 0.2, "real", [], "No face found"))
    broken = ray_engine.record_row(ScanRecord("d.jpg", "image", message="bad", error="bad"))
    assert (no_face["crops"], broken["crops"], broken["p_fake"]) == (1, 0, None)  # the centre square is one crop
    assert ray_engine.rows_table([row, no_face, broken]).num_rows == 3


def test_the_actor_turns_a_failed_block_into_error_records(detector, media, monkeypatch):
    actor = ray_engine.ScanActor.__new__(ray_engine.ScanActor)  # the actor's state without starting Ray
    actor.det, actor.options = detector, scan.ScanOptions()
    paths = np.array([str(media / "astronaut.jpg"), str(media / "notes.jpg")])
    table = actor({"path": paths})
    assert table.column("path").to_pylist() == list(paths)
    assert table.column("error").to_pylist()[0] is None and table.column("error").to_pylist()[1]

    def explode(self, files):
        raise MemoryError("out of memory")
        yield

    monkeypatch.setattr(scan.Scanner, "run", explode)
    table = actor({"path": paths})
    assert table.column("path").to_pylist() == list(paths)
    assert all("unexpected MemoryError" in e for e in table.column("error").to_pylist())


def test_done_paths_reads_both_outputs_and_sets_a_broken_file_aside(tmp_path):
    import pyarrow.parquet as pq

    rows = [ray_engine.record_row(ScanRecord(str(tmp_path / "a.jpg"), "image", 0.1, "real"))]
    pq.write_table(ray_engine.rows_table(rows), tmp_path / "part-1.parquet")
    (tmp_path / "part-2.parquet").write_bytes(b"PAR1 cut short")
    (tmp_path / "records-1.jsonl").write_text(json.dumps({"path": "rel/b.jpg"}) + "\n" + '{"path": "c.j')
    assert ray_engine.has_output(tmp_path)
    done = ray_engine.done_paths(tmp_path)
    assert done == {str(tmp_path / "a.jpg"), os.path.abspath("rel/b.jpg")}  # the cut-off line is ignored
    assert (tmp_path / "part-2.parquet.incomplete").is_file() and not (tmp_path / "part-2.parquet").exists()
    todo, skipped = ray_engine.todo_paths([tmp_path / "a.jpg", Path("rel/b.jpg"), Path("new.jpg")], done)
    assert (todo, skipped) == (["new.jpg"], 2)


def test_manifests_list_files_relative_to_themselves(media, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copy(media / "astronaut.jpg", tmp_path / "astronaut.jpg")
    (tmp_path / "list.csv").write_text("path,label\nastronaut.jpg,real\n" f"{media / 'coffee.jpg'},real\nnope.jpg,x\n")
    pq.write_table(pa.table({"path": ["astronaut.jpg", str(media / "sub" / "hopper.png")]}), tmp_path / "list.parquet")
    files, missing = scan.collect_files([tmp_path / "list.csv", tmp_path / "list.parquet", media / "sub"])
    # each file once; a manifest's entries are not looked up on disk: the loader reports nope.jpg
    assert files == [tmp_path / "astronaut.jpg", media / "coffee.jpg", tmp_path / "nope.jpg", media / "sub" / "hopper.png",
                     media / "sub" / VIDEO]
    assert missing == []
    assert scan.collect_files([tmp_path / "nothing-here"]) == ([], [str(tmp_path / "nothing-here")])
    (tmp_path / "bad.csv").write_text("file\nastronaut.jpg\n")
    with pytest.raises(scan.ManifestError, match="no 'path' column"):
        scan.collect_files([tmp_path / "bad.csv"])


@pytest.mark.parametrize("argv, message", [
    (["--format", "parquet"], "needs --engine ray"),
    (["--resume", "--out", "X"], "needs --engine ray"),
    (["--engine", "ray", "--format", "parquet"], "give --out DIR"),
    (["--engine", "ray", "--resume"], "give --out DIR"),
    (["--engine", "ray", "--format", "html", "--out", "X"], "--engine local"),
    (["--engine", "ray", "--actors", "0"], "at least 1"),
])
def test_engine_flags_are_checked_before_anything_loads(media, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        scan.main([str(media), *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_an_output_folder_with_records_needs_resume(media, tmp_path, capsys):
    (tmp_path / "records-1.jsonl").write_text('{"path": "x.jpg"}\n')
    with pytest.raises(SystemExit):
        scan.main([str(media), "--engine", "ray", "--out", str(tmp_path)])
    assert "add --resume" in capsys.readouterr().err


def test_tf_lite_threads_follow_omp_num_threads_as_ray_sets_it_per_actor(monkeypatch):
    from detector.inference.lite import default_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    for unusable in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert default_threads() == max(1, min(4, os.cpu_count() or 1))


class CrashOnName(ray_engine.ScanActor):
    """An actor whose process dies on any block holding a file named crash*: a decoder that segfaults.

    It loads no detector: this pool tests what the engine does with lost blocks, not the model.
    """

    def __init__(self, model_dir, face_finder, scan):
        pass

    def __call__(self, batch):
        paths = [str(p) for p in batch["path"]]
        if any(Path(p).name.startswith("crash") for p in paths):
            os._exit(1)
        return ray_engine.rows_table([ray_engine.record_row(ScanRecord(p, "image", 0.1, "real", message="fine"))
                                      for p in paths])


@pytest.mark.slow
def test_a_file_that_kills_its_worker_costs_only_its_own_record(ray_session):
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    # Blocks of two on one actor: [a, crash] dies with its neighbour, and the blocks queued behind it on
    # the same actor are killed with it too.  The rescue round (one file per block, one block in flight
    # per actor) must give every good file its record and the crashing one an error after 1 + retries tries.
    good = [f"{c}.jpg" for c in "abcdefg"]
    paths = good[:1] + ["crash.jpg"] + good[1:]
    out = io.StringIO()
    opts = ray_engine.RayOptions(actors=1, retries=0, block_files=2, progress=False)
    result = ray_engine.run(paths, opts, "json", None, out, actor=CrashOnName)
    got = by_path(out.getvalue())
    assert got.keys() == set(paths)
    assert all(got[p]["label"] == "real" and got[p]["error"] is None for p in good)
    assert got["crash.jpg"]["label"] is None and "died (1 attempt;" in got["crash.jpg"]["error"]
    assert result.counts["files"] == len(paths) and result.counts["errors"] == 1


def test_csv_rows_from_the_ray_engine_are_the_local_rows(tmp_path):
    from detector.batch.records import CSV_FIELDS

    recs = [ScanRecord("a.jpg", "image", 0.123449, "real", [{"box": [1, 2, 3, 4], "p_fake": 0.1234}], "ok"),
            ScanRecord("b.mp4", "video", 0.98765, "fake", [], "ok", n_faces_override=2),
            ScanRecord("c.jpg", "image", message="bad", error="The file is empty.")]
    out = io.StringIO()
    output = ray_engine._Output("csv", None, out)
    output.write(ray_engine.rows_table([ray_engine.record_row(r) for r in recs]))
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(CSV_FIELDS)
    local = io.StringIO()
    import csv

    writer = csv.DictWriter(local, fieldnames=CSV_FIELDS, lineterminator="\n")
    for r in recs:
        writer.writerow(r.csv_row())
    assert lines[1:] == local.getvalue().splitlines()


def test_progress_and_address_reach_ray_and_ray_data_shows_progress_unless_asked_not_to(media, monkeypatch):
    """Without starting Ray: the CLI hands --address and progress to the engine, which sets Ray Data's bars."""
    pytest.importorskip("ray")
    from ray.data import DataContext

    seen = []

    def fake_run(paths, opts, out_format, out_dir, stdout=None, driver_records=(), actor=None):
        seen.append(opts)
        return ray_engine.RunResult()

    monkeypatch.setattr(ray_engine, "run", fake_run)
    assert run_cli([str(media), "--engine", "ray", "--address", "10.0.0.1:6379"])[0] == 0
    assert run_cli([str(media), "--engine", "ray", "--no-progress"])[0] == 0
    assert (seen[0].address, seen[0].progress) == ("10.0.0.1:6379", True)
    assert (seen[1].address, seen[1].progress) == (None, False)  # None: a local Ray for the run

    ctx = DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.enable_operator_progress_bars, ctx.print_on_execution_start,
             ctx.max_errored_blocks)
    try:
        ray_engine.configure_progress(True)
        assert ctx.enable_progress_bars and ctx.enable_operator_progress_bars and ctx.max_errored_blocks == -1
        ray_engine.configure_progress(False)
        assert not ctx.enable_progress_bars and not ctx.enable_operator_progress_bars
    finally:
        (ctx.enable_progress_bars, ctx.enable_operator_progress_bars, ctx.print_on_execution_start,
         ctx.max_errored_blocks) = saved
