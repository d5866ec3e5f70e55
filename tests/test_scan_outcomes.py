"""The scan CLI's outcomes without the model: exit statuses, a stopped scan's partial report, a closed pipe.

The scanner is replaced by one that yields ready-made records, so these run in a moment; the
counts a real scan gives are checked against its report in ``test_scan.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from detector.batch import scan
from detector.batch.records import ScanRecord
from detector.batch.tally import outcome, summary_line, tally, tally_words

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StubDetector:
    threshold = 0.5

    def model_info(self) -> dict:
        return {"name": "stub", "version": "0", "threshold": 0.5, "face_detector": "none"}


def _record(path, verdict: str | None) -> ScanRecord:
    if verdict is None:
        return ScanRecord(str(path), "image", message="damaged", error="damaged")
    p = {"fake": 0.9, "uncertain": 0.5, "real": 0.1, "no_face": 0.2}[verdict]
    return ScanRecord(str(path), "image", p, "fake" if p >= 0.5 else "real", [], "", verdict=verdict)


def _files(folder: Path, n: int) -> Path:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"p{i:04d}.jpg").write_bytes(b"")  # only the names are read: the scanner is a stub
    return folder


def _run(argv, monkeypatch, verdicts, after=None) -> tuple[int, str, str]:
    """``scan.main`` over files whose records get ``verdicts`` in turn; ``after(i)`` runs after record i."""
    def run(self, files):
        for i, f in enumerate(files):
            yield _record(f, verdicts[i % len(verdicts)])
            if after is not None:
                after(i)

    monkeypatch.setattr(scan.Scanner, "run", run)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = scan.main([str(a) for a in argv], detector=StubDetector())
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("verdicts,status", [
    (["real", "uncertain", "no_face"], scan.EXIT_CLEAN),
    (["real", "fake", None], scan.EXIT_FAKE_FOUND),
    (["real", None], scan.EXIT_UNREADABLE),
    ([None], scan.EXIT_USAGE),
])
def test_exit_status_follows_the_verdicts(tmp_path, monkeypatch, verdicts, status):
    code, _, stderr = _run([_files(tmp_path / "in", 6), "--no-progress"], monkeypatch, verdicts)
    assert code == status
    counts = tally([_record("x", v) for v in verdicts * (6 // len(verdicts))])
    assert tally_words(counts) in stderr


def test_an_uncertain_face_above_the_threshold_is_not_fake_found(tmp_path, monkeypatch):
    # label "fake" (P >= threshold) but verdict "uncertain": the old exit status said "fake found".
    rec = ScanRecord("a.jpg", "image", 0.55, "fake", [], "", verdict="uncertain")
    assert outcome(rec.verdict, rec.label, rec.error) == "uncertain"
    assert scan.exit_status(scan.summarize([rec], 1.0, 0)) == scan.EXIT_CLEAN


def test_help_documents_every_exit_status():
    text = scan.build_parser().format_help()
    for status in ("0 ", "1 ", "2 ", "3 ", "130", "141", "143"):
        assert f"\n  {status}" in text
    assert "partial" in text and "likely fake" in text and "unreadable" in text


@pytest.mark.parametrize("how,status,why", [
    ("sigterm", scan.EXIT_TERMINATED, "stopped by SIGTERM"),
    ("ctrl-c", scan.EXIT_INTERRUPTED, "interrupted by Ctrl-C"),
])
def test_a_stopped_scan_exits_as_stopped_and_its_report_says_partial(tmp_path, monkeypatch, how, status, why):
    def stop(i):
        if i == 2:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # the handler raises in this frame
            else:
                raise KeyboardInterrupt

    out = tmp_path / "out"
    for fmt, name in (("json", "report.json"), ("html", "report.html")):
        code, _, stderr = _run([_files(tmp_path / "in", 10), "--no-progress", "--format", fmt, "--out", out],
                               monkeypatch, ["fake", "real"], after=stop)
        assert code == status and code != scan.EXIT_FAKE_FOUND  # a fake was seen, but the scan did not finish
        assert f"Partial: the scan was {why} after 3 of 10 files." in stderr and "partial report written" in stderr
        report = (out / name).read_text()
        if fmt == "json":
            doc = json.loads(report)
            assert doc["summary"]["partial"] == why and doc["summary"]["planned"] == 10
            assert len(doc["results"]) == 3
        else:
            assert "Partial report." in report and "after 3 of 10 files" in report
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or how == "ctrl-c"  # the handler is put back


def test_summary_line_says_one_file_and_the_five_counts():
    recs = [_record("a.jpg", "fake")]
    s = scan.summarize(recs, 0.5, 1)
    assert summary_line(s) == "1 file scanned (1 image, 0 videos): 1 likely fake, 0 uncertain, 0 no sign found; 0.5 s."
    s = scan.summarize([_record(f"{v}.jpg", v) for v in ("fake", "uncertain", "real", "no_face", None)], 2.0, 4)
    assert summary_line(s).startswith("5 files scanned (5 images, 0 videos): 1 likely fake, 1 uncertain, "
                                      "1 no sign found, 1 without a face, 1 unreadable;")


def test_scan_into_a_pipe_closed_early_ends_quietly(tmp_path):
    # "python -m detector scan big/ | head": the reader goes away after one line.
    folder = _files(tmp_path / "many", 3000)  # far more output than a pipe buffers
    script = textwrap.dedent("""
        import sys
        from detector.batch import scan
        from detector.batch.records import ScanRecord

        class Det:
            threshold = 0.5

        def run(self, files):
            for f in files:
                yield ScanRecord(str(f), "image", 0.1, "real", [], "1 face found.", verdict="real")

        scan.Scanner.run = run
        sys.exit(scan.main(sys.argv[1:], detector=Det()))
    """)
    for fmt in ("json", "csv"):
        proc = subprocess.Popen([sys.executable, "-c", script, str(folder), "--format", fmt], cwd=PROJECT_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = proc.stdout.readline()
        proc.stdout.close()  # what head does after its lines
        _, stderr = proc.communicate(timeout=120)
        assert first.strip()
        text = stderr.decode()
        assert "Traceback" not in text and "BrokenPipe" not in text and "Exception ignored" not in text, text
        assert proc.returncode == scan.EXIT_PIPE_CLOSED
