"""The HTML panels every front end shows (detector.ui.panels): headline, provenance, face table, score."""

from __future__ import annotations

import html
import io
import re

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from detector.inference.provenance import read_provenance
from detector.inference.results import DetectionResult, FaceResult
from detector.ui import panels


def _result(p: float, verdict: str, found: bool = True, n: int = 1) -> DetectionResult:
    faces = [FaceResult([10 * i, 0, 10, 10], p if i == n - 1 else 0.05, "fake" if p >= 0.5 else "real",
                        detector_score=None if not found else 0.99, verdict=verdict if i == n - 1 else "real")
             for i in range(n)]
    return DetectionResult(faces=faces, label=faces[-1].label, p_fake=p, face_found=found, message="m", notes=[],
                           image_size=[100, 100], model={"threshold": 0.49}, cam_method=None, timings_ms={},
                           verdict=verdict)


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


@pytest.mark.parametrize(("p", "verdict", "words", "colour"), [
    (0.93, "fake", "likely FAKE", "#b3261e"), (0.05, "real", "NO SIGN FOUND", "#1e7b34"),
    (0.45, "uncertain", "UNCERTAIN", "#8a5300"), (0.73, "no_face", "NO FACE", "#4a4a55"),
])
def test_the_headline_says_each_state_in_its_own_words_and_colour(p, verdict, words, colour):
    markup = panels.headline_html(_result(p, verdict, found=verdict != "no_face"))
    assert f'data-verdict="{verdict}"' in markup and f"color:{colour}" in markup
    assert _text(markup).split()[:len(words.split())] == words.split()
    facts = " ".join(panels.headline_facts(_result(p, verdict, found=verdict != "no_face")))  # (the scale names all)
    assert "NO SIGN FOUND" not in facts or verdict == "real"  # a near-threshold or no-face result: not "no sign"
    assert "REAL" not in _text(markup)  # no state claims the photo is real


def test_no_face_is_not_assessed_and_its_centre_score_is_only_an_aside():
    line, small = panels.headline_facts(_result(0.73, "no_face", found=False))
    assert "Not assessed" in line and "0.73" not in line
    assert small.startswith("For information only") and "0.73" in small


def test_the_headline_explains_the_bands_in_order_and_many_faces_name_the_deciding_one():
    line, _ = panels.headline_facts(_result(0.45, "uncertain"))
    assert line == "P(fake) 0.45"
    # where the number is shown, the bands are explained, in order and not overlapping
    notes = panels.headline_notes(_result(0.45, "uncertain"))
    assert notes[0].startswith("How to read P(fake): below 0.35: NO SIGN FOUND · 0.35–0.64: UNCERTAIN · "
                               "0.64 and above: likely FAKE.") and "threshold (0.49)" in notes[0]
    line, _ = panels.headline_facts(_result(0.93, "fake", n=3))
    assert "3 faces (1 likely fake, 2 no sign found); face #3 decides" in line


def _png_with(chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def test_provenance_panel_says_what_a_finding_means_and_what_it_is_worth():
    prov = read_provenance(_png_with({"parameters": "a face\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1"}),
                           "gen.png").to_dict()
    text = _text(panels.provenance_html(prov))
    assert "Metadata says: made by generative AI" in text and "moderate evidence" in text
    assert "unsigned metadata can be added or copied" in text
    assert "No metadata proves nothing" in text and "forged" in text  # the caveat is always there


def test_provenance_panel_without_metadata_says_absence_proves_nothing():
    text = _text(panels.provenance_html(read_provenance(_png_with({}), "x.png").to_dict()))
    assert "No provenance metadata" in text and "proves nothing" in text
    assert "not read" in _text(panels.provenance_html(None))  # pixels, not a file


def test_metadata_is_escaped_in_the_panel():
    prov = read_provenance(_png_with({"Software": "<script>alert(1)</script> Midjourney"}), "x.png").to_dict()
    markup = panels.provenance_html(prov)
    assert "<script>" not in markup and "&lt;script&gt;" in markup


def test_face_table_rows_are_numbered_with_thumbnails_and_verdict_chips():
    res = _result(0.93, "fake", n=2)
    markup = panels.face_table_html(res, [np.zeros((16, 16, 3), np.uint8)] * 2)
    assert markup.count("data:image/jpeg;base64,") == 2 and ">#1<" in markup and ">#2<" in markup
    assert markup.count("likely FAKE") == 1 and markup.count("NO SIGN FOUND") == 1


def test_the_score_panel_shows_both_scores_large():
    text = _text(panels.score_html(3, 2, 5))
    assert re.search(r"You\s+3 / 5\s+Model\s+2 / 5", text)
    assert "font-size:2rem" in panels.score_html(0, 0, 0)


def test_the_provenance_panel_says_absence_proves_nothing_once():
    text = _text(panels.provenance_html(read_provenance(_png_with({}), "x.png").to_dict()))
    assert text.count("proves nothing") + text.count("prove nothing") == 1


def test_a_video_error_panel_shows_no_markdown_markers():
    markup = panels.error_html("Could not analyse this video: <b>bad</b> **file**")
    assert "&lt;b&gt;" in markup and "fdet-error" in markup
    assert "**" not in panels.error_html("Could not analyse this video: it is damaged.")


def test_at_phone_width_the_face_table_scrolls_with_a_hint():
    markup = panels.face_table_html(_result(0.93, "fake", n=2), [])
    assert "overflow-x:auto" in markup and panels.SCROLL_HINT in markup
    assert "@media (max-width:" in markup and ".fdet-scroll-hint{display:block}" in markup
