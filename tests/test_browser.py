"""A newcomer's pass in a real browser (Debian's Chromium via Playwright): the Gradio app, the
Streamlit page and the scan's HTML report.

Uploads through the page's own file inputs and checks what a person would see: the coloured
verdict headline in its four states (a portrait, a group of three, a photo without a face), boxes
numbered like the face table and never under the picture's label, system fonts only, a video whose
preview plays without an error popup, five game rounds without a repeated picture where a second
click rewrites nothing, the About tab's plain text first, the Streamlit page on loopback without a
Deploy button and with its face table unclipped, and a report whose paths wrap between their parts.

Screenshots go to a temp folder, or to ``FDET_SCREENSHOT_DIR`` when it is set (a review pass);
with ``FDET_WRITE_SCREENSHOTS=1`` the README's pictures in docs/ are replaced::

    FDET_WRITE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser.py

Skipped when /usr/bin/chromium is missing; never runs ``playwright install``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from servers import CHROMIUM, chromium, serve, streamlit_server

import app
from detector.inference.results import unsure_range
from detector.ui.pictures import group_photo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WRITE_DOCS = os.environ.get("FDET_WRITE_SCREENSHOTS") == "1"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian chromium (/usr/bin/chromium) is not installed")]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("FDET_SCREENSHOT_DIR")
    folder = Path(where) if where else tmp_path_factory.mktemp("screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page, shots: Path, name: str, docs_name: str | None = None, **kwargs) -> Path:
    """A full-page screenshot for review; also the README's picture when asked for (FDET_WRITE_SCREENSHOTS=1)."""
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, **kwargs)
    assert path.stat().st_size > 10_000
    if docs_name and WRITE_DOCS:
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / docs_name), full_page=True, **kwargs)
    return path


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def url(detector):
    with serve(app.build_demo(detector)) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser, url):
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.goto(url, wait_until="domcontentloaded")
    pg.locator("#photo").wait_for(timeout=60_000)
    yield pg
    pg.close()


def upload(page, path: Path) -> str:
    """Upload ``path`` on the Detect tab; the headline's verdict once the new result is shown."""
    page.get_by_role("tab", name="Detect").click()
    page.evaluate("() => document.querySelectorAll('#verdict .fdet-headline').forEach(e => e.remove())")
    page.locator("#photo input[type=file]").set_input_files(str(path))
    headline = page.locator("#verdict .fdet-headline")
    headline.wait_for(timeout=90_000)
    overlay = page.locator("#overlay img").first
    overlay.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle())
    page.wait_for_timeout(500)
    return headline.get_attribute("data-verdict")


def test_detect_shows_a_coloured_headline_provenance_and_numbered_faces(page, tmp_path, astronaut, shots):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo, quality=95)
    verdict = upload(page, photo)
    assert verdict in ("fake", "real", "uncertain")
    words = page.locator("#verdict").inner_text()
    assert re.match(r"(likely FAKE|NO SIGN FOUND|UNCERTAIN)\s+P\(fake\) ([<>] )?0\.\d\d", words)
    assert "REAL" not in words and "How to read P(fake)" in words  # the bands explained where the number is
    assert "File metadata (provenance)" in page.locator("#provenance").inner_text()
    assert "proves nothing" in page.locator("#provenance").inner_text()
    table = page.locator("#faces")
    assert table.locator("tbody tr").count() == 1 and "#1" in table.inner_text()
    assert table.locator("img").evaluate("img => img.naturalWidth") == 128  # the face's heatmap thumbnail
    overlay = page.locator("#overlay img").first
    assert overlay.evaluate("img => img.naturalWidth") == astronaut.shape[1]
    assert overlay.evaluate("img => img.naturalHeight") > astronaut.shape[0]  # the legend strip under the photo
    # Nothing drawn over the picture's top-left corner: no label element inside the overlay's box.
    assert page.locator("#overlay label").count() == 0 or not page.locator("#overlay label").first.is_visible()
    shot(page, shots, "detect_portrait")


def test_the_page_renders_with_system_fonts_only(page):
    families = page.evaluate("() => [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert families == []  # no web font was loaded (none is reachable offline)
    body = page.evaluate("() => getComputedStyle(document.querySelector('.gradio-container')).fontFamily")
    headline = page.evaluate("() => getComputedStyle(document.querySelector('#verdict .fdet-headline div'))"
                             ".fontFamily")
    assert body.startswith("system-ui") and headline.startswith("system-ui")


def test_a_group_photo_gets_one_numbered_row_per_face(page, tmp_path, shots):
    photo = tmp_path / "group.jpg"
    Image.fromarray(group_photo()).save(photo, quality=95)
    upload(page, photo)
    rows = page.locator("#faces tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td").nth(1).inner_text().strip() for i in range(3)] == ["#1", "#2", "#3"]
    assert re.search(r"3 faces \(.+\); face #[123] decides", page.locator("#verdict").inner_text())
    shot(page, shots, "detect_group", "screenshot.png")


def test_a_photo_without_a_face_is_no_face_not_real(page, tmp_path, no_face, shots):
    photo = tmp_path / "coffee.jpg"
    Image.fromarray(no_face).save(photo, quality=95)
    assert upload(page, photo) == "no_face"
    text = page.locator("#verdict").inner_text()
    assert text.startswith("NO FACE") and "Not assessed" in text and "REAL" not in text and "NO SIGN" not in text
    assert "For information only" in text
    shot(page, shots, "detect_no_face")


def test_a_near_threshold_face_is_uncertain(page, detector, tmp_path, shots, monkeypatch):
    # The demo set's face the model scores closest to its threshold; should the model in use score none
    # of them within the band, a threshold moved next to that score puts it there.
    from detector.ui.game import list_game_items, make_demo_game_set

    items = list_game_items(make_demo_game_set(detector, tmp_path / "demo"))
    scores = {i.path: detector.analyze(i.path, cam_method=None, render_overlay=False).p_fake for i in items}
    path = min(scores, key=lambda k: abs(scores[k] - detector.threshold))
    lo, hi = unsure_range(detector.threshold)
    if not lo < scores[path] < hi:
        monkeypatch.setattr(detector.config, "threshold", round(scores[path] + 0.04, 4))
    assert upload(page, Path(path)) == "uncertain"
    text = page.locator("#verdict").inner_text()
    lo, hi = unsure_range(detector.threshold)
    assert text.startswith("UNCERTAIN") and f"{lo:.2f}–{hi:.2f}: UNCERTAIN" in text  # the band, where the score is
    assert "UNCERTAIN" in page.locator("#faces").inner_text()
    shot(page, shots, "detect_near_threshold")


def test_an_mp4v_video_is_analysed_and_its_preview_plays_without_an_error(page, tmp_path, astronaut, shots):
    import cv2

    clip = tmp_path / "clip.mp4"
    frame = cv2.cvtColor(cv2.resize(astronaut, (256, 256)), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (256, 256))
    for i in range(10):
        writer.write(np.roll(frame, 4 * i, axis=1))
    writer.release()
    page.get_by_role("tab", name="Video").click()
    page.locator("#video input[type=file]").set_input_files(str(clip))
    page.get_by_role("button", name="Analyse video").click()
    page.locator("#video_message .fdet-headline").wait_for(timeout=120_000)
    video = page.locator("#preview video")
    video.wait_for(state="attached", timeout=30_000)
    page.wait_for_function("v => v.readyState >= 1 && v.videoWidth > 0", arg=video.element_handle(), timeout=30_000)
    assert video.evaluate("v => v.error") is None
    page.wait_for_timeout(1000)
    assert page.get_by_text(re.compile("not playable", re.I)).count() == 0  # no error popup
    assert "sampled frames show a face" in page.locator("#video_message").inner_text()
    shot(page, shots, "video")


def test_five_game_rounds_show_five_pictures_and_a_second_click_changes_nothing(page, shots):
    page.get_by_role("tab", name="Can you beat the model?").click()
    seen = []
    for i in range(5):
        picture = page.locator("#game img").first
        picture.wait_for(state="visible", timeout=90_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        seen.append(hashlib.sha256(picture.screenshot()).hexdigest())
        box = page.locator("#game").bounding_box()
        page.locator("#guess_real" if i % 2 else "#guess_fake").click()
        message = page.locator("#game_message")
        message.get_by_text("Truth:").wait_for(timeout=90_000)
        score = page.locator("#score").inner_text()
        assert re.search(rf"You\s+\d / {i + 1}\s+Model\s+\d / {i + 1}", score)
        first = message.inner_text()
        assert page.locator("#guess_fake").is_disabled() and page.locator("#guess_real").is_disabled()
        page.locator("#guess_fake").click(force=True)  # a second click, on a disabled button
        page.wait_for_timeout(800)
        assert message.inner_text() == first and page.locator("#score").inner_text() == score
        assert page.locator("#game").bounding_box()["height"] == box["height"]  # no layout jump
        shot(page, shots, f"game_round_{i + 1}")
        page.locator("#next_image").click()
        page.wait_for_function("() => !document.querySelector('#game_message').innerText.includes('Truth:')")
    assert len(set(seen)) == 5  # no picture twice


def test_about_says_what_it_can_and_cannot_do_before_the_model_card(page, shots):
    page.get_by_role("tab", name="About").click()
    heading = page.get_by_role("heading", name="What this detector can and cannot do")
    heading.wait_for(timeout=30_000)
    card = page.get_by_text("The model card: training data, validation figures, robustness")
    assert heading.bounding_box()["y"] < card.bounding_box()["y"]
    assert page.get_by_text("Leave-one-source-out", exact=False).count() == 0 or not page.get_by_text(
        "Leave-one-source-out", exact=False).first.is_visible()  # the card stays folded
    shot(page, shots, "about")


def test_the_rest_docs_page_renders_offline(browser, url, shots):
    pg = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        pg.goto(url + "api/v1/docs", wait_until="load")
        assert pg.get_by_role("heading", name="POST /api/v1/detect").is_visible()
        shot(pg, shots, "rest_docs")
    finally:
        pg.close()


# --------------------------------------------------------------------- Streamlit, as started by a user


def test_streamlit_page_on_loopback_without_deploy_button_and_with_its_table_whole(browser, tmp_path, shots):
    with streamlit_server(ROOT) as st:
        photo = tmp_path / "group.jpg"
        Image.fromarray(group_photo()).save(photo, quality=92)
        pg = browser.new_page(viewport={"width": 1280, "height": 1900})
        pg.goto(st.url, wait_until="domcontentloaded")
        uploader = pg.locator("[data-testid=stFileUploaderDropzoneInput]")
        uploader.wait_for(state="attached", timeout=120_000)
        assert pg.locator("[data-testid=stAppDeployButton]").count() == 0
        uploader.set_input_files(str(photo))
        pg.locator(".fdet-headline").wait_for(timeout=180_000)
        picture = pg.locator("[data-testid=stImage] img").first
        picture.wait_for(timeout=60_000)
        pg.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        table = pg.locator(".fdet-faces table")
        assert table.locator("tbody tr").count() == 3
        width = table.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
        assert width[0] <= width[1]  # the last column is not clipped
        assert "File metadata (provenance)" in pg.locator(".fdet-provenance").inner_text()
        pg.wait_for_timeout(1000)
        shot(pg, shots, "streamlit")
        pg.close()
    assert f"127.0.0.1:{st.port}" in st.log and "0.0.0.0" not in st.log  # listens on loopback only
    assert "Inotify" not in st.log and "Traceback" not in st.log


# --------------------------------------------------------------------- the scan's HTML report


# True when every line break inside the element falls right after "/", "_", "-", "." or a space.
BREAKS_ONLY_AFTER_SEPARATORS = """e => {
  const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  let prevTop = null, prevChar = null, ok = true;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (let i = 0; i < node.length; i++) {
      const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
      const top = r.getBoundingClientRect().top;
      if (prevTop !== null && top > prevTop + 2 && !/[\\/_\\-. ]/.test(prevChar)) ok = false;
      prevTop = top; prevChar = node.data[i];
    }
  }
  return ok;
}"""


def test_the_html_report_reads_well_in_a_browser(browser, detector, tmp_path, astronaut, no_face, shots):
    from detector.batch import scan

    folder = tmp_path / "holiday photos from the long weekend" / "second_day-afternoon"
    folder.mkdir(parents=True)
    Image.fromarray(group_photo()).save(folder / "group_photo_of_three_people.jpg", quality=92)
    Image.fromarray(astronaut).save(folder / "astronaut.jpg", quality=92)
    Image.fromarray(no_face).save(folder / "coffee.jpg", quality=92)
    (folder / "notes.jpg").write_text("not a photo\n")
    out = tmp_path / "report"
    assert scan.main([str(tmp_path / "holiday photos from the long weekend"), "--format", "html", "--out", str(out),
                      "--no-progress"], detector=detector) in (scan.EXIT_FAKE_FOUND, scan.EXIT_UNREADABLE)  # notes.jpg
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        pg.goto((out / "report.html").as_uri(), wait_until="load")
        assert pg.evaluate("() => document.documentElement.scrollWidth") <= 1280  # no sideways scrolling
        parts = pg.locator(".file, .folder")
        assert parts.count() >= 8
        for i in range(parts.count()):  # names and folders wrap only after a separator, never inside a word
            assert parts.nth(i).evaluate(BREAKS_ONLY_AFTER_SEPARATORS), parts.nth(i).inner_text()
        summary = pg.locator(".summary").inner_text()
        assert summary.startswith("4 files scanned (4 images, 0 videos)")
        assert "Please upload" not in pg.content()
        caption = pg.locator(".face").first
        assert caption.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 12  # box tags readable
        shot(pg, shots, "report", "report.png")
    finally:
        pg.close()


PHONE = {"width": 390, "height": 844}  # an iPhone 12-15 in CSS pixels


def test_the_report_and_the_api_docs_fit_a_phone_without_sideways_scrolling(browser, url, detector, tmp_path,
                                                                              astronaut, no_face, shots):
    from detector.batch import scan

    folder = tmp_path / "photos_sent_in_by_readers_for_checking" / "week_48"
    folder.mkdir(parents=True)
    Image.fromarray(group_photo()).save(folder / "group_photo_of_three_people_at_the_press_conference.jpg",
                                        quality=92)
    Image.fromarray(astronaut).save(folder / "astronaut.jpg", quality=92)
    Image.fromarray(no_face).save(folder / "coffee.jpg", quality=92)
    (folder / "notes.jpg").write_text("not a photo\n")  # unreadable: its own badge colour
    out = tmp_path / "report"
    scan.main([str(folder.parent), "--format", "html", "--out", str(out), "--no-progress"], detector=detector)
    pg = browser.new_page(viewport=PHONE)
    try:
        for name, address in (("report_390", (out / "report.html").as_uri()), ("rest_docs_390", url + "api/v1/docs")):
            pg.goto(address, wait_until="load")
            widths = pg.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth]")
            shot(pg, shots, name)
            assert max(widths) <= PHONE["width"], f"{name} scrolls sideways: {widths}"
        # The report's unreadable badge is neither the UNCERTAIN colour nor missing from the legend.
        pg.goto((out / "report.html").as_uri(), wait_until="load")
        colour = "e => getComputedStyle(e).backgroundColor"
        unreadable = pg.locator("tbody .v-error").first.evaluate(colour)
        assert pg.locator(".legend .v-error").count() == 1
        assert unreadable != pg.locator(".legend .v-uncertain").evaluate(colour)
    finally:
        pg.close()
