"""The batch scan: ``python -m detector scan`` on a folder of good, odd and broken files.

The CLI runs in-process (``detector.batch.scan.main(argv, detector)``) with the session's detector so
TensorFlow starts once; one subprocess run proves the ``python -m detector`` entry point.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from detector.batch import scan
from detector.batch.records import CSV_FIELDS, ScanRecord

PROJECT_ROOT = Path(__file__).resolve().parent.parent

HOPPER_NAME = 'hopper & "<b>".png'  # a file name that must be escaped in HTML
SCORED = ["astronaut.jpg", HOPPER_NAME, "coffee.jpg", "clip.mp4"]
BROKEN = ["notes.jpg", "truncated.jpg"]


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut, hopper, no_face):
    """A folder like a user's: photos, a nested PNG, a no-face photo, broken files, a video, a stray text file."""
    root = tmp_path_factory.mktemp("media")
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(astronaut).save(root / "astronaut.jpg", quality=92)
    Image.fromarray(hopper).save(root / "sub" / HOPPER_NAME)
    Image.fromarray(no_face).save(root / "coffee.jpg", quality=92)
    (root / "notes.jpg").write_text("a text file wearing a .jpg name\n")
    data = (root / "astronaut.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "readme.txt").write_text("not media: the scan must skip it")
    frame = cv2.cvtColor(cv2.resize(astronaut, (256, 256)), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(root / "sub" / "deeper" / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (256, 256))
    for i in range(6):
        writer.write(np.roll(frame, 4 * i, axis=1))
    writer.release()
    return root


def run_cli(argv: list[str], detector) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = scan.main(argv, detector=detector)
    return code, out.getvalue(), err.getvalue()


def by_name(records: list[dict]) -> dict[str, dict]:
    return {rec["path"].replace("\\", "/").rsplit("/", 1)[-1]: rec for rec in records}


@pytest.fixture(scope="module")
def json_scan(media, detector, tmp_path_factory):
    """One JSON scan of the whole folder (progress bar on, to check it stays off stdout)."""
    out_dir = tmp_path_factory.mktemp("json_report")
    code, stdout, stderr = run_cli([str(media), "--frames", "3", "--out", str(out_dir)], detector)
    return code, stdout, stderr, out_dir


def test_json_lines_give_one_record_per_media_file(json_scan):
    code, stdout, stderr, _ = json_scan
    records = [json.loads(line) for line in stdout.splitlines()]  # every stdout line is JSON
    names = by_name(records)
    assert sorted(names) == sorted(SCORED + BROKEN)  # readme.txt skipped, nested files found
    for rec in records:
        assert {"path", "p_fake", "label", "faces", "error"} <= rec.keys()
    # exit status: a likely fake found, or (two broken files) some files unreadable
    assert code == (scan.EXIT_FAKE_FOUND if any(rec["verdict"] == "fake" for rec in records) else scan.EXIT_UNREADABLE)
    assert "scan" in stderr and "files" in stderr  # progress bar and summary went to stderr


def test_scored_images_carry_probability_label_and_faces(json_scan):
    names = by_name([json.loads(line) for line in json_scan[1].splitlines()])
    for name in ("astronaut.jpg", HOPPER_NAME):
        rec = names[name]
        assert rec["error"] is None and rec["label"] in ("fake", "real") and 0.0 <= rec["p_fake"] <= 1.0
        assert rec["n_faces"] == len(rec["faces"]) >= 1
        face = rec["faces"][0]
        assert len(face["box"]) == 4 and 0.0 <= face["p_fake"] <= 1.0 and "heatmap" not in face  # heatmaps off
        assert rec["p_fake"] == max(f["p_fake"] for f in rec["faces"])
    coffee = names["coffee.jpg"]
    assert coffee["error"] is None and coffee["faces"] == [] and "No face found" in coffee["message"]


def test_broken_files_become_error_records_and_the_run_completes(json_scan):
    names = by_name([json.loads(line) for line in json_scan[1].splitlines()])
    for name in BROKEN:
        rec = names[name]
        assert rec["label"] is None and rec["p_fake"] is None
        assert isinstance(rec["error"], str) and 10 < len(rec["error"]) < 200
        assert "Traceback" not in rec["error"]
    assert "text file" in names["notes.jpg"]["error"]
    assert "truncated" in names["truncated.jpg"]["error"]


def test_video_record_has_frame_summary(json_scan):
    rec = by_name([json.loads(line) for line in json_scan[1].splitlines()])["clip.mp4"]
    assert rec["kind"] == "video" and rec["error"] is None
    assert len(rec["frames"]) == 3 and rec["top_k"] == 3
    assert all(f["n_faces"] >= 1 and 0.0 <= f["p_fake"] <= 1.0 for f in rec["frames"])
    top = sorted((f["p_fake"] for f in rec["frames"]), reverse=True)
    assert rec["p_fake"] == pytest.approx(np.mean(top[:3]), abs=2e-4)


def test_json_report_file_holds_the_same_records(json_scan):
    _, stdout, _, out_dir = json_scan
    doc = json.loads((out_dir / "report.json").read_text())
    assert [r["path"] for r in doc["results"]] == [json.loads(line)["path"] for line in stdout.splitlines()]
    assert doc["summary"]["files"] == 6 and doc["summary"]["errors"] == 2
    assert doc["model"]["threshold"] > 0


def test_csv_has_header_and_one_row_per_file(media, detector, tmp_path):
    code, stdout, _ = run_cli([str(media), "--format", "csv", "--frames", "2", "--no-progress",
                               "--out", str(tmp_path)], detector)
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert stdout.splitlines()[0] == ",".join(CSV_FIELDS)
    assert len(rows) == 6
    assert code == (scan.EXIT_FAKE_FOUND if any(row["verdict"] == "fake" for row in rows) else scan.EXIT_UNREADABLE)
    for row in rows:
        if row["path"].endswith(tuple(BROKEN)):
            assert row["error"] and row["label"] == "" and row["p_fake"] == ""
        else:
            assert row["error"] == "" and row["label"] in ("fake", "real") and 0 <= float(row["p_fake"]) <= 1
    assert (tmp_path / "report.csv").read_text().replace("\r\n", "\n") == stdout


def test_html_report_lists_every_file_escaped_with_heatmaps_and_sortable_table(media, detector, tmp_path):
    code, stdout, stderr = run_cli([str(media), "--format", "html", "--out", str(tmp_path), "--frames", "2",
                                    "--timeline", "--no-progress"], detector)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for name in SCORED + BROKEN:
        assert html.escape(name, quote=True) in page
    table = page.split("<table", 1)[1]
    assert "<b>" not in table  # no raw markup from the file name in the table
    assert page.count("<tr>") == 1 + 6  # header + one row per file
    assert 'data-sort="num"' in page and "<script>" in page and "P(fake)" in page
    # Photo and overlay for the 3 images and the video, one heatmap thumbnail per face found (astronaut,
    # Hopper, the video's worst frame), the legend strip; nothing for the 2 broken files.
    assert page.count("data:image/jpeg;base64,") == 8 + 3 + 1
    assert table.count('class="face"') == 3 and "#1 " in table
    assert "threshold" not in stdout and stdout == ""  # the report is the output: no JSON dump on the terminal
    assert "threshold" in page and str(detector.model_info()["version"]).split()[0] in page
    timelines = list((tmp_path / "timelines").glob("*.png"))
    assert len(timelines) == 1 and timelines[0].read_bytes()[:4] == b"\x89PNG"
    assert 'class="timeline"' in page
    assert "report.html" in stderr


def test_html_report_words_verdicts_paths_and_counts_for_a_person(media, detector, tmp_path):
    code, _, _ = run_cli([str(media), "--format", "html", "--out", str(tmp_path), "--frames", "2", "--no-progress"],
                         detector)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    summary = page.split('<p class="summary">', 1)[1].split("</p>", 1)[0]
    assert summary.startswith("6 files scanned (5 images, 1 video): ")  # "1 video", not "1 videos"
    assert "1 without a face" in summary and "2 unreadable" in summary and "not assessed" in summary
    # Paths wrap between their parts, never inside a word; the file name has a line of its own.
    assert "word-break:break-all" not in page and "/<wbr>" in page and '<div class="file">astronaut.<wbr>jpg</div>' in page
    # The four verdict states have their own classes and words; the no-face photo is NO FACE, not REAL.
    assert all(f".v-{v}{{" in page for v in ("fake", "real", "uncertain", "noface"))
    coffee = next(row for row in page.split("<tr>") if "coffee.jpg" in row)
    assert 'class="v v-noface">NO FACE<' in coffee
    # Errors speak to a reader of the report, not to someone in front of an upload form.
    assert "Please upload" not in page and "text file, not an image" in page
    # The model line gives the bands in order, none overlapping, and the threshold in readable figures.
    from detector.inference.results import scale_words

    t = detector.threshold
    assert f"P(fake) {html.escape(scale_words(t))} (threshold {t:.3f})" in page and repr(t) not in page
    # Provenance beside every image, with what it is worth.
    assert page.count('class="prov"') == 5 - 2 and "No provenance metadata" in page and "proves nothing" in page


def test_exit_status_follows_the_threshold(media, detector, monkeypatch):
    photo = str(media / "astronaut.jpg")
    monkeypatch.setattr(detector.config, "threshold", 0.0)  # everything is fake
    code, stdout, _ = run_cli([photo, "--no-progress"], detector)
    assert code == scan.EXIT_FAKE_FOUND and json.loads(stdout)["label"] == "fake"
    monkeypatch.setattr(detector.config, "threshold", 1.01)  # nothing can be fake
    code, stdout, _ = run_cli([photo, "--no-progress"], detector)
    assert code == scan.EXIT_CLEAN and json.loads(stdout)["label"] == "real"


def test_exit_status_2_when_nothing_is_readable_or_usage_is_wrong(media, detector, tmp_path):
    code, stdout, _ = run_cli([str(media / "notes.jpg"), str(media / "truncated.jpg"), "--no-progress"], detector)
    assert code == scan.EXIT_USAGE and len(stdout.splitlines()) == 2
    code, _, stderr = run_cli([str(tmp_path / "missing")], detector)
    assert code == scan.EXIT_USAGE and f"{tmp_path / 'missing'} does not exist" in stderr
    (tmp_path / "empty").mkdir()
    code, _, stderr = run_cli([str(tmp_path / "empty")], detector)
    assert code == scan.EXIT_USAGE and "no image or video found in" in stderr
    with pytest.raises(SystemExit) as exc:
        run_cli([str(media), "--format", "html"], detector)  # html needs --out
    assert exc.value.code == 2


def test_batched_scan_matches_analyze_with_fewer_model_calls(media, detector, monkeypatch):
    paths = [media / "astronaut.jpg", media / "sub" / HOPPER_NAME, media / "coffee.jpg"]
    calls = []
    real_score = detector.score
    monkeypatch.setattr(detector, "score", lambda crops, cam: calls.append(len(crops)) or real_score(crops, cam))
    for cam in (None, "gradcam"):
        calls.clear()
        scanner = scan.Scanner(detector, scan.ScanOptions(cam_method=cam, batch=32))
        records = list(scanner.run(paths))
        assert len(calls) == 1 and calls[0] >= 3  # all crops of the three photos in one call
        for path, rec in zip(paths, records, strict=True):
            ref = detector.analyze(path, cam_method=cam, render_overlay=False)
            assert rec.path == str(path) and rec.label == ref.label and rec.message == ref.message
            assert rec.p_fake == pytest.approx(ref.p_fake, abs=1e-4)
            ref_faces = ref.faces if ref.face_found else []
            assert [f["box"] for f in rec.faces] == [f.box for f in ref_faces]
            for got, want in zip(rec.faces, ref_faces, strict=True):
                assert got["p_fake"] == pytest.approx(want.p_fake, abs=1e-4)
                if cam is not None:
                    np.testing.assert_allclose(got["heatmap"], want.heatmap, atol=2e-3)


@pytest.mark.slow  # a fresh process loads TensorFlow and the model (~10 s)
def test_entry_point_lists_scan_and_runs_it_in_a_subprocess(media):
    env_python = sys.executable
    listing = subprocess.run([env_python, "-m", "detector", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=60)
    assert listing.returncode == 0 and "scan" in listing.stdout
    run = subprocess.run([env_python, "-m", "detector", "scan", str(media / "astronaut.jpg"), str(media / "notes.jpg"),
                          "--format", "csv", "--face-detector", "haar", "--no-progress"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    fake = any(line.split(",")[5] == "fake" for line in lines[1:])  # the verdict column
    assert run.returncode == (1 if fake else 3), run.stderr[-2000:]  # 3: notes.jpg is unreadable
    assert lines[0] == ",".join(CSV_FIELDS) and len(lines) == 3
    assert "Traceback" not in run.stderr


def test_reports_keep_file_names_that_are_not_utf8(tmp_path):
    from detector.batch import report

    name = os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 file name on a UTF-8 system
    rec = ScanRecord(str(tmp_path / name), "image", 0.25, "real", [], "1 face found.")
    csv_bytes = report.write_csv([rec], tmp_path / "report.csv").read_bytes()
    assert b"caf\xe9.jpg,real,0.2500,0," in csv_bytes
    page = report.write_html([rec], tmp_path / "report.html", {"name": "m", "threshold": 0.5},
                             scan.summarize([rec], 1.0, 1)).read_bytes()
    assert page.count(b"caf\xe9.jpg") >= 2  # the path cell and its tooltip
    assert json.loads(json.dumps(rec.to_dict()))["path"] == rec.path  # JSON lines escape it


def test_out_path_that_is_a_file_is_a_usage_error_before_any_scanning(tmp_path):
    taken = tmp_path / "report"
    taken.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        run_cli([str(tmp_path), "--out", str(taken)], detector=None)  # refused before a model is loaded
    assert exc.value.code == 2


def test_summary_line_progress_bar_and_report_count_the_same_five_outcomes(media, detector, tmp_path):
    # The CLI once said "8 fake, 19 real" where its report said "5 likely fake, 3 uncertain, ...".
    from detector.batch.tally import tally_words

    code, _, stderr = run_cli([str(media), "--format", "html", "--out", str(tmp_path), "--frames", "2"], detector)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    rows = page.split("<tbody>", 1)[1].split("<tr>")[1:]
    shown = {"fake": 'class="v v-fake"', "uncertain": 'class="v v-uncertain"', "real": 'class="v v-real"',
             "no_face": 'class="v v-noface"', "unreadable": 'class="v v-error"'}
    from_rows = {o: sum(cls in row for row in rows) for o, cls in shown.items()}
    assert from_rows["unreadable"] == 2 and from_rows["no_face"] == 1 and sum(from_rows.values()) == 6
    line = stderr.strip().splitlines()[-1]
    counts = line.split(": ", 2)[2].split(";")[0]  # "N likely fake, N uncertain, N no sign found, ..."
    assert counts == tally_words(from_rows)
    assert html.escape(counts) in page.split('<p class="summary">', 1)[1].split("</p>", 1)[0]
    assert tally_words(from_rows, always=()) in stderr  # the progress bar's last state says the same
    assert "fake," not in line.replace("likely fake,", "")  # no bare label counts
    assert code == (scan.EXIT_FAKE_FOUND if from_rows["fake"] else scan.EXIT_UNREADABLE)


def test_one_file_is_one_file_and_a_missing_path_says_it_does_not_exist(media, detector, tmp_path):
    gone = tmp_path / "gone.jpg"
    code, stdout, stderr = run_cli([str(media / "coffee.jpg"), str(gone), "--no-progress"], detector)
    records = [json.loads(line) for line in stdout.splitlines()]
    assert records[0]["error"] == f"{gone} does not exist."
    assert "2 files scanned (2 images, 0 videos)" in stderr and "1 unreadable" in stderr
    assert code == scan.EXIT_UNREADABLE
    code, _, stderr = run_cli([str(media / "coffee.jpg"), "--no-progress"], detector)
    assert "1 file scanned (1 image, 0 videos)" in stderr and "1 files" not in stderr and code == scan.EXIT_CLEAN
