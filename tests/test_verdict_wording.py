"""Issue 22, item 1: verdict words that match the evidence, the same in every front end.

Over the whole range of P(fake): no score is shown as a certainty (never "100 %", "0 %", "1.00" or
"0.00"); below the threshold nothing claims the photo is real; the unsure band says UNCERTAIN; and
Gradio/Streamlit (one headline panel), the face table, the box caption, the scan report and the
REST/JSON ``message`` use the same words.  What a "no sign found" is worth is read from the
shipped model's files, never typed into the code.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from detector.config import Limits
from detector.inference.pipeline import Detector
from detector.inference.results import (
    VERDICT_WORDS,
    DetectionResult,
    FaceResult,
    face_caption,
    no_sign_worth,
    percent_text,
    score_text,
    unsure_range,
    verdict_of,
    verdict_words,
)
from detector.inference.unseen import unseen_fakes_missed
from detector.ui import panels
from detector.ui.tables import face_rows

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.888  # the shipped model's threshold, rounded; any threshold must obey the same rules
P_RANGE = [0.0, 1e-9, 0.004, 0.005, 0.01, 0.2, 0.5, 0.73, 0.8, 0.85, 0.888, 0.9, 0.93, 0.95, 0.99, 0.994, 0.995,
           0.9999, 1.0 - 1e-9, 1.0]
CERTAIN = re.compile(r"\b100\s*%|(?<![\d.])0\s*%|\b1\.0+\b|(?<![\d.])0\.0+(?![\d])")
REAL_CLAIM = re.compile(r"\breal\b|\bREAL\b|\bgenuine photo\b|\bauthentic\b", re.IGNORECASE)


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _result(p: float, threshold: float = THRESHOLD, missed: float | None = 0.9) -> DetectionResult:
    verdict = verdict_of(p, threshold)
    label = "fake" if p >= threshold else "real"
    face = FaceResult([10, 20, 30, 40], p, label, detector_score=0.99, verdict=verdict)
    message = Detector._message(SimpleNamespace(threshold=threshold, limits=Limits()), [face], True, verdict, p, 0)
    return DetectionResult(faces=[face], label=label, p_fake=p, face_found=True, message=message, notes=[],
                           image_size=[100, 100], model={"threshold": threshold, "unseen_fakes_missed": missed},
                           cam_method=None, timings_ms={}, verdict=verdict)


def _all_words(res: DetectionResult) -> dict[str, str]:
    """Every place a person reads this result, per front end."""
    headline = _text(panels.headline_html(res))
    for note in panels.headline_notes(res):  # the scale's small print names every state: checked on its own
        headline = headline.replace(note, " ")
    return {"headline (Gradio and Streamlit)": headline,
            "face table": _text(panels.face_table_html(res, [])),
            "box caption": face_caption(1, res.faces[0]),
            "REST/JSON message": res.to_dict()["message"]}


@pytest.mark.parametrize("p", P_RANGE)
def test_no_front_end_shows_a_score_as_a_certainty(p):
    for where, words in _all_words(_result(p)).items():
        assert not CERTAIN.search(words), f"{where} shows a certainty for P(fake) {p}: {words!r}"


@pytest.mark.parametrize("p", P_RANGE)
def test_below_the_threshold_nothing_claims_the_photo_is_real(p):
    res = _result(p)
    for where, words in _all_words(res).items():
        assert not REAL_CLAIM.search(words), f"{where} claims 'real' for P(fake) {p}: {words!r}"
    if res.verdict == "real":
        assert all("NO SIGN FOUND" in w for w in _all_words(res).values())


@pytest.mark.parametrize("p", P_RANGE)
def test_every_front_end_says_the_same_verdict_words(p):
    res = _result(p)
    words = verdict_words(res.verdict)
    for where, text in _all_words(res).items():
        assert words in text, f"{where} does not say {words!r}: {text!r}"
    others = [w for v, w in VERDICT_WORDS.items() if v != res.verdict]
    facts = " ".join(_all_words(res).values())
    assert not any(w in facts for w in others)  # and no other verdict's words


@pytest.mark.parametrize("p", np.linspace(0.0, 1.0, 201).tolist())
def test_the_unsure_band_is_uncertain_and_the_words_follow_the_bands(p):
    lo, hi = unsure_range(THRESHOLD)
    res = _result(p)
    expected = "uncertain" if lo < p < hi else ("fake" if p >= hi else "real")
    assert res.verdict == expected
    assert verdict_words(res.verdict) in res.message


def test_the_report_words_the_verdicts_and_the_scale_the_same_way():
    from detector.batch.records import ScanRecord
    from detector.batch.report import _verdict, render_html

    for p in (0.05, 0.85, 0.99):
        verdict = verdict_of(p, THRESHOLD)
        rec = ScanRecord("x.jpg", "image", p, "fake" if p >= THRESHOLD else "real", verdict=verdict)
        assert _verdict(rec)[1] == verdict_words(verdict)
    rec = ScanRecord("x.jpg", "image", 0.99999, "fake", verdict="fake")
    page = render_html([rec], {"name": "m", "version": "1", "threshold": THRESHOLD, "face_detector": "mtcnn",
                               "unseen_fakes_missed": 0.9}, {"files": 1, "images": 1, "videos": 0, "errors": 0,
                                                             "seconds": 1})
    text = _text(page)
    lo, hi = unsure_range(THRESHOLD)
    # one sentence, bands in order, none overlapping ("≥ 0.888 fake, 0.81–0.94 uncertain" overlapped)
    assert f"below {lo:.2f}: NO SIGN FOUND · {lo:.2f}–{hi:.2f}: UNCERTAIN · {hi:.2f} and above: likely FAKE" in text
    assert "means fake" not in text and "1.0000" not in text and "> 0.9999" in text
    assert no_sign_worth(0.9) in text
    assert "likely REAL" not in text and "likely real" not in text


def test_display_of_scores_and_shares_is_clamped():
    assert [score_text(p) for p in (0.0, 0.004, 0.005, 0.5, 0.994, 0.995, 1.0)] == [
        "< 0.01", "< 0.01", "0.01", "0.50", "0.99", "> 0.99", "> 0.99"]
    assert score_text(0.99999, 4) == "> 0.9999" and score_text(1.0, 3) == "> 0.999"
    assert [percent_text(s) for s in (0.0, 0.004, 0.5, 0.986, 0.996, 1.0)] == [
        "< 1 %", "< 1 %", "50 %", "99 %", "> 99 %", "> 99 %"]


def test_the_headline_explains_the_threshold_and_what_no_sign_found_is_worth():
    notes = panels.headline_notes(_result(0.2, missed=0.81))
    lo, hi = unsure_range(THRESHOLD)
    assert any(f"{lo:.2f}–{hi:.2f}: UNCERTAIN" in n and f"threshold ({THRESHOLD:.2f})" in n for n in notes)
    assert any("found no sign in 81 % of those fakes" in n for n in notes)
    assert not any("worth" in n for n in panels.headline_notes(_result(0.2, missed=None)))  # no figure, no line
    markup = panels.headline_html(_result(0.2, missed=0.81))
    assert "81 %" in _text(markup) and "How to read P(fake)" in _text(markup)


def _model_dir(tmp_path: Path, fold: dict | None) -> Path:
    (tmp_path / "eval").mkdir(parents=True, exist_ok=True)
    if fold is not None:
        (tmp_path / "eval" / "loso.json").write_text(json.dumps({"folds": {"diffusion": fold}}))
    return tmp_path


def test_what_no_sign_found_is_worth_is_read_from_the_models_files(tmp_path):
    shipped = json.loads((ROOT / "assets/model/eval/loso.json").read_text())["folds"]["diffusion"]
    caught = shipped["held_out_fakes_caught"]  # at the fold model's own threshold, as the verdict decides
    assert unseen_fakes_missed(ROOT / "assets/model") == pytest.approx(1 - caught)
    assert unseen_fakes_missed(_model_dir(tmp_path / "a", {"held_out_fakes_caught": 0.25})) == pytest.approx(0.75)
    both = {"held_out_fakes_caught": 0.25, "recall_at_5pct_reals": 0.4}  # the verdict's own threshold wins
    assert unseen_fakes_missed(_model_dir(tmp_path / "b", both)) == pytest.approx(0.75)
    only_recall = {"recall_at_5pct_reals": 0.4}
    assert unseen_fakes_missed(_model_dir(tmp_path / "b2", only_recall)) == pytest.approx(0.6)
    assert unseen_fakes_missed(_model_dir(tmp_path / "c", None)) is None  # no file
    assert unseen_fakes_missed(_model_dir(tmp_path / "d", {"held_out_auc": 0.5})) is None  # no key
    assert unseen_fakes_missed(_model_dir(tmp_path / "e", {"held_out_fakes_caught": "n/a"})) is None
    (tmp_path / "f" / "eval").mkdir(parents=True)
    (tmp_path / "f" / "eval" / "loso.json").write_text("{broken")
    assert unseen_fakes_missed(tmp_path / "f") is None and unseen_fakes_missed(None) is None
    assert no_sign_worth(None) == ""


def test_the_face_table_and_its_rows_agree():
    res = _result(0.2)
    assert face_rows(res)[0][1] == "NO SIGN FOUND"
