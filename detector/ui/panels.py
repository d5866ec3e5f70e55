"""HTML panels every front end shows the same way: the verdict headline, the file's provenance
evidence beside it, and the game's score.

Gradio (``gr.HTML``), Streamlit (``st.html``) and the scan's HTML report render these strings as
they are; styles are inline so each panel stands alone.  Everything that comes from a file (its
metadata, a tool's name) is HTML-escaped: metadata is user data.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from PIL import Image

from ..inference.results import (
    VERDICT_MEANINGS,
    DetectionResult,
    no_sign_worth,
    scale_sentence,
    score_text,
    verdict_words,
)
from .tables import FACE_TABLE_HEADERS, face_rows

# (text colour, background) per verdict state: the box colours of explain.overlay, darkened for text.
VERDICT_STYLE = {
    "fake": ("#b3261e", "#fde2e4"),
    "real": ("#1e7b34", "#e3f4e6"),
    "uncertain": ("#8a5300", "#fff0d4"),
    "no_face": ("#4a4a55", "#ececef"),
}

PROVENANCE_BADGES = {  # provenance verdict -> (words, text colour, background)
    "ai-generated-declared": ("Metadata says: made by generative AI", "#b3261e", "#fde2e4"),
    "ai-edited-declared": ("Metadata says: changed with AI", "#b3261e", "#fde2e4"),
    "edited-declared": ("Metadata says: edited with software", "#8a5300", "#fff0d4"),
    "camera-or-unknown-declared": ("Metadata present, no AI claim", "#4a4a55", "#ececef"),
    "none": ("No provenance metadata", "#4a4a55", "#ececef"),
}
STRENGTH_WORDS = {"strong": "strong evidence", "moderate": "moderate evidence", "weak": "weak evidence"}
KIND_WORDS = {"c2pa": "Content Credentials (C2PA)", "iptc-digital-source-type": "IPTC digital source type",
              "generator-metadata": "generator metadata", "software-tag": "software tag"}
# What provenance evidence is worth, said once under every panel.
CAVEAT_FOUND = "A generator's manifest or tag is strong evidence of AI content if genuine."
CAVEAT_ABSENT = "No metadata proves nothing: most websites and apps strip it."
CAVEAT_FORGED = "Metadata without a valid C2PA signature can be added, copied or forged by anyone."
PROVENANCE_CAVEAT = f"{CAVEAT_FOUND} {CAVEAT_ABSENT} {CAVEAT_FORGED}"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','DejaVu Sans',sans-serif"  # in style="..."


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def face_counts(res: DetectionResult) -> str:
    """ "1 uncertain, 2 no sign found": the faces per verdict, most suspicious states first."""
    counts = {v: sum(f.verdict == v for f in res.faces) for v in ("fake", "uncertain", "real")}
    return ", ".join(f"{n} {verdict_words(v).lower()}" for v, n in counts.items() if n)


def headline_facts(res: DetectionResult) -> tuple[str, str]:
    """(the line under the headline, a smaller line under that).

    Without a face the centre's score is only an aside, in the small line.  A score is never shown
    as 0 or 1 (:func:`score_text`).
    """
    t = res.threshold
    if res.verdict == "no_face":
        threshold = "" if t is None else f" (threshold {t:.2f})"
        return ("Not assessed: no face was found in this picture.",
                f"For information only: the picture's centre scored P(fake) {score_text(res.p_fake)}{threshold}; "
                "the model judges faces, so this says little.")
    line = f"P(fake) {score_text(res.p_fake)}"
    if len(res.faces) > 1:
        top = 1 + max(range(len(res.faces)), key=lambda i: res.faces[i].p_fake)
        line += f" · {len(res.faces)} faces ({face_counts(res)}); face #{top} decides"
    return line, _sentence(VERDICT_MEANINGS.get(res.verdict or "real", ""))


def headline_notes(res: DetectionResult) -> list[str]:
    """The small print under a scored headline: how to read the score (its bands around the threshold)
    and, when the model's files say it, what a "no sign found" is worth."""
    if res.verdict == "no_face":
        return []
    notes = [] if res.threshold is None else [scale_sentence(res.threshold)]
    worth = no_sign_worth((res.model or {}).get("unseen_fakes_missed"))
    return [*notes, worth] if worth else notes


def headline_html(res: DetectionResult) -> str:
    """The verdict in large coloured words, the score under it, what the verdict means, and how to read it."""
    colour, background = VERDICT_STYLE.get(res.verdict or "real", VERDICT_STYLE["real"])
    line, small = headline_facts(res)
    notes = "".join(f'<div class="fdet-note" style="font-size:.8rem;color:#555;margin-top:.2rem">{_e(n)}</div>'
                    for n in headline_notes(res))
    return (f'<div class="fdet-headline" data-verdict="{_e(res.verdict)}" style="{FONT};background:{background};'
            f'border-left:.5rem solid {colour};border-radius:.5rem;padding:.7rem 1rem;color:#1d1d1f">'
            f'<div style="font-size:1.9rem;font-weight:700;line-height:1.15;color:{colour}">'
            f'{_e(verdict_words(res.verdict))}</div>'
            f'<div style="font-size:1rem;margin-top:.2rem">{_e(line)}</div>'
            f'<div style="font-size:.85rem;color:#555;margin-top:.15rem">{_e(small)}</div>{notes}</div>')


def provenance_html(prov: dict[str, Any] | None) -> str:
    """What the file's metadata says about its origin, in plain words, with what that is worth."""
    if prov is None:
        badge, colour, background = "Provenance not read", "#4a4a55", "#ececef"
        summary = "The detector got pixels, not a file, so there was no metadata to read."
        findings = []
        strength = ""
    else:
        badge, colour, background = PROVENANCE_BADGES.get(prov.get("verdict", "none"), PROVENANCE_BADGES["none"])
        summary = prov.get("summary", "")
        findings = prov.get("findings") or []
        strength = STRENGTH_WORDS.get(prov.get("strength", ""), "")
    items = "".join(
        f'<li><b>{_e(KIND_WORDS.get(f.get("kind"), f.get("kind")))}</b> in {_e(f.get("field"))}: '
        f'<code style="word-break:break-word">{_e(f.get("value"))}</code> &mdash; {_e(f.get("meaning"))} '
        f'<i>({_e(STRENGTH_WORDS.get(f.get("strength"), f.get("strength")))})</i></li>'
        for f in findings[:8])
    more = f"<li>&hellip; and {len(findings) - 8} more</li>" if len(findings) > 8 else ""
    listing = f'<ul style="margin:.3rem 0 .2rem 1.1rem;padding:0">{items}{more}</ul>' if items else ""
    tag = f" &middot; {_e(strength)}" if strength else ""
    # Without metadata the summary already says that absence proves nothing: not twice in one panel.
    absent = prov is not None and not findings
    caveat = f"{CAVEAT_FOUND} {CAVEAT_FORGED}" if absent else PROVENANCE_CAVEAT
    return (f'<div class="fdet-provenance" data-provenance="{_e(None if prov is None else prov.get("verdict"))}" '
            f'style="{FONT};border:1px solid #d9d9e0;border-radius:.5rem;padding:.55rem .8rem;color:#1d1d1f;'
            f'background:#fff">'
            f'<div style="font-weight:600">File metadata (provenance) '
            f'<span style="background:{background};color:{colour};border-radius:.3rem;padding:.05rem .4rem;'
            f'white-space:nowrap">{_e(badge)}{tag}</span></div>'
            f'<div style="margin-top:.25rem">{_e(summary)}</div>{listing}'
            f'<div style="font-size:.8rem;color:#555;margin-top:.3rem">{_e(caveat)}</div></div>')


def score_html(you: int, model: int, rounds: int) -> str:
    """The game's running score, large enough to read at a glance."""
    def cell(name: str, n: int, colour: str) -> str:
        return (f'<div style="flex:1;text-align:center;background:#f4f4f7;border-radius:.5rem;padding:.4rem">'
                f'<div style="font-size:.9rem;color:#444">{name}</div>'
                f'<div style="font-size:2rem;font-weight:700;color:{colour}">{n} / {rounds}</div></div>')
    return (f'<div class="fdet-score" style="{FONT};display:flex;gap:.6rem">'
            f'{cell("You", you, "#1d4ed8")}{cell("Model", model, "#6d28d9")}</div>')


def data_uri(rgb: np.ndarray, quality: int = 85) -> str:
    """An RGB picture as an inline JPEG (``data:image/jpeg;base64,...``): nothing to serve or fetch."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def verdict_chip(verdict: str | None) -> str:
    """The verdict's words on its colour, as in the headline."""
    colour, background = VERDICT_STYLE.get(verdict or "real", VERDICT_STYLE["real"])
    return (f'<span style="background:{background};color:{colour};font-weight:700;border-radius:.3rem;'
            f'padding:.1rem .45rem;white-space:nowrap">{_e(verdict_words(verdict))}</span>')


SCROLL_HINT = "Swipe the table sideways to see every column &rarr;"
FACE_TABLE_WIDTH = 640  # px: about the table's natural width; below it the scroll hint shows
FACE_TABLE_CSS = (f".fdet-faces .fdet-scroll-hint{{display:none}}"
                  f"@media (max-width:{FACE_TABLE_WIDTH}px){{.fdet-faces .fdet-scroll-hint{{display:block}}}}")


def face_table_html(res: DetectionResult, thumbnails: list[np.ndarray] | None = None) -> str:
    """One row per face, numbered as its box: its thumbnail with its heatmap, verdict, P(fake) and box.

    ``thumbnails`` default to the result's own (``analyze`` renders them with the overlay).
    """
    thumbs = thumbnails if thumbnails is not None else (res.thumbnails or [])
    cell = "padding:.3rem .55rem;border:none;border-bottom:1px solid #e3e3e8;text-align:left;vertical-align:middle"
    rows = []
    for i, (f, (name, _, p, finder, box)) in enumerate(zip(res.faces, face_rows(res), strict=True)):
        img = (f'<img src="{data_uri(thumbs[i])}" alt="face {i + 1} with its heatmap" width="96" height="96" '
               'style="display:block;border-radius:.3rem">') if i < len(thumbs) else "&mdash;"
        rows.append(f'<tr><td style="{cell}">{img}</td><td style="{cell};font-weight:700;font-size:1.1rem">'
                    f'{_e(name)}</td><td style="{cell}">{verdict_chip(f.verdict)}</td>'
                    f'<td style="{cell};font-variant-numeric:tabular-nums">{_e(score_text(p, 3))}</td>'
                    f'<td style="{cell}">{"&mdash;" if finder is None else f"{finder:.2f}"}</td>'
                    f'<td style="{cell};white-space:nowrap">{_e(box)}</td></tr>')
    head = "".join(f'<th style="{cell};background:#f0f0f3">{h}</th>'
                   for h in ["face and heatmap", *FACE_TABLE_HEADERS])
    skipped = (f'<p style="color:#555;margin:.3rem 0 0">{res.faces_skipped} more small face'
               f'{"" if res.faces_skipped == 1 else "s"} not scored.</p>') if res.faces_skipped else ""
    # On a phone the table is wider than the screen: it scrolls inside its own box (the page never
    # does), and a hint says so -- shown only where the screen is narrow enough to need it.
    return (f'<div class="fdet-faces" style="{FONT};max-width:100%"><style>{FACE_TABLE_CSS}</style>'
            f'<div class="fdet-scroll-hint" style="font-size:.85rem;color:#555;margin:0 0 .25rem">'
            f'{SCROLL_HINT}</div>'
            f'<div class="fdet-scroll" style="overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch">'
            f'<table style="border-collapse:collapse;border:1px solid #e3e3e8;width:auto;min-width:60%;margin:0;'
            f'background:#fff"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
            f'{skipped}</div>')


def video_headline_html(vr, threshold: float, missed: float | None = None) -> str:
    """A video's verdict as a headline (its frames' message under it), with how to read the score and,
    given ``missed`` (:func:`detector.inference.unseen.unseen_fakes_missed`), what a "no sign found" is worth."""
    verdict = vr.verdict or "no_face"
    colour, background = VERDICT_STYLE.get(verdict, VERDICT_STYLE["no_face"])
    words = "NOT SCORED" if vr.p_fake is None else verdict_words(verdict)
    scored = sum(f.p_fake is not None for f in vr.frames)
    frames = f"{scored} of {len(vr.frames)} sampled frame{'' if len(vr.frames) == 1 else 's'} show a face"
    notes: list[str] = []
    if vr.p_fake is None:
        line = f"No face in {len(vr.frames)} sampled frame{'' if len(vr.frames) == 1 else 's'}: the video was not scored."
    else:
        k = min(vr.top_k, scored)
        top = "the top frame" if k == 1 else f"the mean of the top {k} frames"
        line = f"P(fake) {score_text(vr.p_fake)} ({top}) · {frames}"
        notes = [_sentence(VERDICT_MEANINGS.get(verdict, "")), scale_sentence(threshold), no_sign_worth(missed)]
    small = "".join(f'<div class="fdet-note" style="font-size:.8rem;color:#555;margin-top:.2rem">{_e(n)}</div>'
                    for n in notes if n)
    return (f'<div class="fdet-headline" data-verdict="{_e(verdict)}" style="{FONT};background:{background};'
            f'border-left:.5rem solid {colour};border-radius:.5rem;padding:.7rem 1rem;color:#1d1d1f">'
            f'<div style="font-size:1.9rem;font-weight:700;line-height:1.15;color:{colour}">{_e(words)}</div>'
            f'<div style="font-size:1rem;margin-top:.2rem">{_e(line)}</div>{small}</div>')


def error_html(text: str) -> str:
    """A refusal or failure as a plain panel (escaped text, no Markdown markers): where an HTML panel
    stands on the page, a Markdown sentence would show its ``**`` literally."""
    return (f'<div class="fdet-error" style="{FONT};background:#fde2e4;border-left:.5rem solid #b3261e;'
            f'border-radius:.5rem;padding:.7rem 1rem;color:#1d1d1f">{_e(text)}</div>')
