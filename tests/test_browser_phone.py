"""The Gradio app at phone width (390 px) and on a desktop (1280 px), in Debian's Chromium (issue 22, item 7).

At 390 px the page itself never scrolls sideways; the face table, wider than a phone, scrolls inside
its own box with a visible hint, and its last column can be scrolled into view (not cut).  On a
desktop the hint stays hidden.  Typing into the opacity slider's number box re-blends the heatmap
(it used to do nothing until the slider was dragged), and a file that is not a picture leaves no
broken-image sliver in the photo box.

Screenshots go to ``FDET_SCREENSHOT_DIR`` (default /tmp/shots) for a person to look at.
Skipped when /usr/bin/chromium or Playwright is missing; never runs ``playwright install``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from servers import CHROMIUM, chromium, serve, streamlit_server

SHOTS = Path(os.environ.get("FDET_SCREENSHOT_DIR", "/tmp/shots"))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian chromium (/usr/bin/chromium) is not installed")]


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def url(detector, tmp_path_factory):
    import app

    # A two-picture game folder: the built-in demo set would be made in the background, on the test's CPU.
    game = tmp_path_factory.mktemp("game")
    for truth, value in (("real", 120), ("fake", 160)):
        (game / truth).mkdir()
        Image.fromarray(np.full((64, 64, 3), value, np.uint8)).save(game / truth / "x.png")
    with serve(app.build_demo(detector, game_dir=game)) as url:
        yield url


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    Image.fromarray(astronaut).save(path, quality=95)
    return path


def open_page(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 844 if width < 600 else 900})
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#photo").wait_for(timeout=60_000)
    return page


def detect(page, path: Path) -> None:
    page.locator("#photo input[type=file]").set_input_files(str(path))
    page.locator("#faces .fdet-faces").wait_for(timeout=90_000)
    overlay = page.locator("#overlay img").first
    overlay.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle())
    page.wait_for_timeout(500)


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def page_scrolls_sideways(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth + 1")


def test_at_phone_width_the_face_table_scrolls_in_its_box_with_a_hint_and_the_page_does_not(browser, url, photo):
    page = open_page(browser, url, 390)
    try:
        detect(page, photo)
        assert not page_scrolls_sideways(page), "the page scrolls sideways at 390 px"
        box = page.locator("#faces .fdet-scroll")
        geometry = box.evaluate("""e => ({overflow: getComputedStyle(e).overflowX, scroll: e.scrollWidth,
                                          client: e.clientWidth, right: e.getBoundingClientRect().right})""")
        assert geometry["right"] <= 390 + 1  # the box fits the screen...
        if geometry["scroll"] > geometry["client"]:  # ...and what does not fit scrolls inside it, with a hint
            assert geometry["overflow"] in ("auto", "scroll")
            assert page.locator("#faces .fdet-scroll-hint").is_visible()
        # The last column can be brought into view: scrolled to the end, its cell ends inside the box.
        box.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
        last = page.locator("#faces tbody tr td").last
        right = last.evaluate("e => e.getBoundingClientRect().right")
        assert right <= geometry["right"] + 1 and last.inner_text().strip()
        box.evaluate("e => { e.scrollLeft = 0; }")
        assert "How to read P(fake)" in page.locator("#verdict").inner_text()
        shot(page, "phone_390")
    finally:
        page.close()


def test_on_a_desktop_the_hint_is_hidden_and_the_opacity_box_re_blends(browser, url, photo):
    page = open_page(browser, url, 1280)
    try:
        detect(page, photo)
        assert not page_scrolls_sideways(page)
        assert not page.locator("#faces .fdet-scroll-hint").is_visible()
        before = page.locator("#overlay img").first.get_attribute("src")
        number = page.locator("#opacity input[type=number]")
        number.fill("0.95")
        number.press("Enter")
        page.wait_for_function("src => { const i = document.querySelector('#overlay img'); return i && i.src !== src"
                               " && i.complete && i.naturalWidth > 0; }", arg=before, timeout=30_000)
        shot(page, "desktop_1280")
    finally:
        page.close()


def test_a_file_that_is_not_a_picture_leaves_no_broken_image(browser, url, tmp_path):
    page = open_page(browser, url, 390)
    try:
        fake = tmp_path / "notes.jpg"
        fake.write_text("this is a text file, not a picture\n")
        page.locator("#photo input[type=file]").set_input_files(str(fake))
        page.locator("#message").get_by_text("Could not analyse this file").wait_for(timeout=60_000)
        page.wait_for_timeout(800)
        broken = page.evaluate("""() => [...document.querySelectorAll('#photo img')].filter(i =>
            i.complete && i.naturalWidth === 0 && i.getClientRects().length > 0 &&
            getComputedStyle(i).display !== 'none').length""")
        assert broken == 0
        assert not page_scrolls_sideways(page)
        shot(page, "phone_390_not_a_picture")
    finally:
        page.close()


def test_the_streamlit_page_at_phone_width_scrolls_its_face_table_not_the_page(browser, tmp_path):

    from detector.ui.pictures import group_photo

    with streamlit_server(Path(__file__).resolve().parent.parent) as st:
        photo = tmp_path / "group.jpg"
        Image.fromarray(group_photo()).save(photo, quality=92)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(st.url, wait_until="domcontentloaded")
        uploader = page.locator("[data-testid=stFileUploaderDropzoneInput]")
        uploader.wait_for(state="attached", timeout=120_000)
        uploader.set_input_files(str(photo))
        page.locator(".fdet-faces table").wait_for(timeout=180_000)
        page.wait_for_timeout(1500)
        assert not page_scrolls_sideways(page), "the Streamlit page scrolls sideways at 390 px"
        box = page.locator(".fdet-scroll")
        geometry = box.evaluate("""e => ({overflow: getComputedStyle(e).overflowX, scroll: e.scrollWidth,
                                          client: e.clientWidth, right: e.getBoundingClientRect().right})""")
        assert geometry["right"] <= 390 + 1
        if geometry["scroll"] > geometry["client"]:
            assert geometry["overflow"] in ("auto", "scroll") and page.locator(".fdet-scroll-hint").is_visible()
        shot(page, "streamlit_390")
        box.scroll_into_view_if_needed()  # Streamlit scrolls inside its own container: a second shot of the table
        page.wait_for_timeout(500)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "streamlit_390_table.png"))
        page.close()
