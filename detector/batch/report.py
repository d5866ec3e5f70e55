"""Scan reports a person can open: ``report.json``, ``report.csv`` and a self-contained ``report.html``.

The HTML page is one file with nothing to fetch -- inline CSS, a few lines of inline JavaScript
for sorting, thumbnails as small base64 JPEGs -- so it can be mailed or archived with the scan.
It shows what the web apps show: the verdict in its four states and colours, the overlay with
numbered box captions (drawn at the page's size, so they can be read), one heatmap thumbnail per
face, the heatmap legend, and the file's provenance evidence with what it is worth.
Every path and message is HTML-escaped: file names are user data (``<img onerror=...>.jpg`` is a
valid file name).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explain.overlay import BoxLabel, legend, render

from ..inference.results import (
    VERDICT_MEANINGS,
    DetectionResult,
    box_labels,
    face_caption,
    no_sign_worth,
    scale_words,
    score_text,
    verdict_words,
)
from ..ui.panels import PROVENANCE_BADGES, PROVENANCE_CAVEAT, STRENGTH_WORDS, VERDICT_STYLE
from .records import CSV_FIELDS, NAME_ERRORS, ScanRecord
from .tally import OUTCOMES, summary_line, tally


def write_json(records: Sequence[ScanRecord], path: Path, model: dict[str, Any], summary: dict[str, Any]) -> Path:
    doc = {"model": model, "summary": summary, "results": [r.to_dict() for r in records]}
    path.write_text(json.dumps(doc, indent=2))
    return path


def write_csv(records: Sequence[ScanRecord], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8", errors=NAME_ERRORS) as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in records:
            w.writerow(r.csv_row())
    return path


# ---------------------------------------------------------------------------- pictures for the HTML page

REPORT_SIDE = 300  # px, longer side of the overlay shown per file: box captions stay legible at this size
FACE_SIDE = 96  # px, per-face heatmap thumbnails


def _jpeg(rgb: np.ndarray, quality: int = 82) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def overlay_picture(rgb: np.ndarray, res: DetectionResult, side: int = REPORT_SIDE, opacity: float = 0.5) -> np.ndarray:
    """``res``'s overlay drawn at the report's size: the photo shrunk *first*, so the numbered box
    captions are drawn at a size that can be read there (shrinking a drawn overlay shrinks them too)."""
    import cv2

    h, w = rgb.shape[:2]
    k = min(1.0, side / max(h, w))
    size = (max(1, round(w * k)), max(1, round(h * k)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if k < 1 else rgb
    heat = None
    if res.heatmap is not None and res.cam_method and res.face_found:  # no face: nothing assessed, no heat
        heat = cv2.resize(res.heatmap, size, interpolation=cv2.INTER_LINEAR) if k < 1 else res.heatmap
    labels = [BoxLabel(tuple(int(round(v * k)) for v in lab.box), lab.text, lab.fake, lab.color)
              for lab in box_labels(res.faces)]
    return render(small, heat, labels, opacity)


def add_pictures(rec: ScanRecord, rgb: np.ndarray, res: DetectionResult, opacity: float = 0.5) -> None:
    """The HTML report's pictures on ``rec``: the overlay at the report's size and one heatmap thumbnail per face."""
    rec.overlay_thumb = _jpeg(overlay_picture(rgb, res, REPORT_SIDE, opacity))
    if res.face_found:
        thumbs = res.thumbnails or []
        rec.face_thumbs = [(_jpeg(cv2_resize(t, FACE_SIDE)), face_caption(i, f), f.verdict or "")
                           for i, (t, f) in enumerate(zip(thumbs, res.faces), start=1)]


def cv2_resize(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA) if rgb.shape[0] != side else rgb


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif;margin:1.5rem;
color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .3rem}
.summary{margin:.2rem 0 .6rem;color:#333}.model{color:#555;font-size:.85rem;margin:.2rem 0}
.legend{display:flex;flex-wrap:wrap;gap:.6rem 1.2rem;align-items:center;margin:.6rem 0 1rem;font-size:.85rem;color:#444}
.legend img{width:300px;max-width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e3e3;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f3;position:sticky;top:0;z-index:1}
th[data-sort]{cursor:pointer;user-select:none}th[data-sort]:hover{background:#e4e4ea}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
img.thumb{max-width:100px;max-height:100px;display:block}
img.overlay{max-width:300px;max-height:360px;display:block}
img.timeline{width:300px;display:block;margin-top:.5rem}
.faces{display:flex;flex-direction:column;gap:.4rem;width:102px}.face{text-align:center;font-size:.8rem;font-weight:600;width:102px}
.face img{width:96px;height:96px;display:block;border-radius:.25rem;border:3px solid #ccc}
.v{font-weight:700;padding:.1rem .45rem;border-radius:.3rem;white-space:nowrap}
VERDICT_RULES
.v-error{background:#efe6f7;color:#5b2a86;outline:1px dashed #5b2a86;outline-offset:-1px}.v-notscored{background:#ececef;color:#4a4a55}
td.path{min-width:11rem;max-width:16rem}td.path .msg{display:block;margin-top:.3rem}.file{font-weight:600;overflow-wrap:break-word}
.folder{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.8rem;color:#555}
.msg{color:#444;font-size:.85rem}.bar{height:.35rem;background:#eee;border-radius:.2rem;margin-top:.2rem}
.bar>span{display:block;height:100%;border-radius:.2rem;background:#e63946}
.prov{font-size:.85rem;min-width:9rem;max-width:16rem}.badge{border-radius:.3rem;padding:.05rem .4rem;font-weight:600}
footer{margin-top:1rem;color:#666;font-size:.8rem}
.partial{color:#b3261e}
/* A phone (390 px): each file becomes a card of its cells, one under the other, so the page never
   scrolls sideways; the sortable headers stay as a row of buttons above the cards. */
@media (max-width:640px){
body{margin:.75rem}
table,thead,tbody,tr,td{display:block}
thead tr{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center;background:none}
thead tr::before{content:"Sort by:";font-size:.85rem;color:#555}
th{position:static;border:1px solid #d0d0d6;border-radius:.3rem;padding:.15rem .5rem}
th:not([data-sort]){display:none}
tbody tr{border-bottom:2px solid #c8c8d0;padding:.5rem 0}
td{border:none;padding:.2rem 0}
td.num{text-align:left}
td.path,.prov{min-width:0;max-width:none}
img.overlay,img.timeline{max-width:100%;height:auto}
.faces{flex-direction:row;flex-wrap:wrap;width:auto}
td:has(> .empty:only-child){display:none}
}
"""

# Click a header to sort by it; click again to reverse. Rows carry their sort keys in data-v.
_JS = """
document.querySelectorAll("th[data-sort]").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var numeric = th.dataset.sort === "num";
    var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;
    if (!th.hasAttribute("aria-sort") && !numeric) dir = 1;
    table.querySelectorAll("th[data-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      if (numeric) { x = parseFloat(x); y = parseFloat(y); if (isNaN(x)) x = -1; if (isNaN(y)) y = -1; }
      return x < y ? -dir : x > y ? dir : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


UNREADABLE_MEANING = "the file could not be read (damaged, not an image or video, or it does not exist)"


def _verdict_rules() -> str:
    return "".join(f".v-{v.replace('_', '')}{{background:{bg};color:{fg}}}" for v, (fg, bg) in VERDICT_STYLE.items())


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 video"``, ``"2 videos"``."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _img(jpeg: bytes | None, alt: str, cls: str = "thumb") -> str:
    if not jpeg:
        return '<span class="msg empty">&mdash;</span>'
    data = base64.b64encode(jpeg).decode("ascii")
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:image/jpeg;base64,{data}">'


def _verdict(r: ScanRecord) -> tuple[str, str]:
    """(css class, text) of the verdict cell: the four verdict states, or why there is none."""
    if r.error is not None:
        return "v-error", "unreadable"
    if r.label is None:
        return "v-notscored", "no face: not scored"
    verdict = r.verdict or r.label
    return f"v-{verdict.replace('_', '')}", verdict_words(verdict)


def _wrappable(text: str) -> str:
    """``text`` escaped, with a line-break opportunity after each separator (``/ _ - .``), so that a long
    name wraps between its parts instead of inside a word."""
    return re.sub(r"([/_.\-])", r"\1<wbr>", _e(text))


def _path_cell(path: str) -> str:
    """The file name on its own line, its folder below, both wrapping between their parts."""
    p = Path(path)
    folder = str(p.parent) if str(p.parent) not in ("", ".") else ""
    folder = folder.replace("\\", "/")
    return (f'<div class="file">{_wrappable(p.name)}</div>'
            + (f'<div class="folder">{_wrappable(folder + "/")}</div>' if folder else ""))


def _faces_cell(r: ScanRecord) -> str:
    if not r.face_thumbs:
        return f'<span class="msg">{"none" if r.n_faces == 0 else r.n_faces}</span>'
    cells = []
    for jpeg, caption, verdict in r.face_thumbs:
        fg, _ = VERDICT_STYLE.get(verdict, VERDICT_STYLE["real"])
        data = base64.b64encode(jpeg).decode("ascii")
        cells.append(f'<div class="face" style="color:{fg}"><img alt="{_e(caption)}" style="border-color:{fg}" '
                     f'src="data:image/jpeg;base64,{data}">{_e(caption)}</div>')
    return f'<div class="faces">{"".join(cells)}</div>'


def _provenance_cell(r: ScanRecord) -> str:
    if r.kind != "image" or r.error is not None:
        return '<span class="msg">&mdash;</span>'
    prov = r.provenance or {}
    words, fg, bg = PROVENANCE_BADGES.get(prov.get("verdict", "none"), PROVENANCE_BADGES["none"])
    strength = STRENGTH_WORDS.get(prov.get("strength", ""), "")
    tag = f" &middot; {_e(strength)}" if strength else ""
    # Without findings the page's header already says what that means (absence proves nothing).
    summary = f'<div class="msg">{_e(prov.get("summary", ""))}</div>' if prov.get("findings") else ""
    return f'<div class="prov"><span class="badge" style="background:{bg};color:{fg}">{_e(words)}{tag}</span>{summary}</div>'


def _row(r: ScanRecord, out_dir: Path) -> str:
    cls, text = _verdict(r)
    p = "" if r.p_fake is None else score_text(r.p_fake, 4)  # never "1.0000": no score is a certainty
    bar = "" if r.p_fake is None else f'<div class="bar"><span style="width:{100 * r.p_fake:.1f}%"></span></div>'
    name = Path(r.path).name
    message = r.error or r.message
    extra = ""
    if r.timeline:
        rel = os.path.relpath(r.timeline, out_dir)
        src = _e(Path(rel).as_posix())
        extra = f'<a href="{src}"><img class="timeline" alt="P(fake) over time" src="{src}"></a>'
    return (
        "<tr>"
        f'<td>{_img(r.thumb, name)}</td>'
        f'<td>{_img(r.overlay_thumb, "heatmap of " + name, "overlay")}{extra}</td>'
        f'<td data-v="{r.n_faces}">{_faces_cell(r)}</td>'
        f'<td class="path" data-v="{_e(r.path.lower())}" title="{_e(r.path)}">{_path_cell(r.path)}'
        f'<span class="msg">{_e(r.kind)}: {_e(message)}</span></td>'
        f'<td data-v="{_e(text)}"><span class="v {cls}">{_e(text)}</span></td>'
        f'<td class="num" data-v="{-1 if r.p_fake is None else f"{r.p_fake:.4f}"}">{_e(p) or "&mdash;"}{bar}</td>'
        f'<td>{_provenance_cell(r)}</td>'
        "</tr>"
    )


def _legend() -> str:
    data = base64.b64encode(_jpeg(legend(300, sides=("fake", "real")), 90)).decode("ascii")
    chips = "".join(f'<span><span class="v v-{v.replace("_", "")}">{_e(verdict_words(v))}</span> '
                    f'{_e(VERDICT_MEANINGS[v])}</span>' for v in VERDICT_STYLE)
    # Not a verdict: a file that could not be read has its own colour, shared with none of the four.
    chips += f'<span><span class="v v-error">unreadable</span> {_e(UNREADABLE_MEANING)}</span>'
    return (f'<div class="legend"><span><img alt="heatmap colours: yellow to red, evidence for fake; light to dark '
            f'blue, evidence against fake" '
            f'src="data:image/jpeg;base64,{data}"></span>{chips}</div>')


def render_html(records: Sequence[ScanRecord], model: dict[str, Any], summary: dict[str, Any],
                out_dir: Path | None = None) -> str:
    """The report page as a string. Rows start most suspicious first; headers re-sort on click."""
    out_dir = out_dir or Path(".")
    order = sorted(records, key=lambda r: -1.0 if r.p_fake is None else r.p_fake, reverse=True)
    # The counts of the CLI's summary line, in its words (one tally, so the two cannot disagree);
    # summaries from before the tally are counted again from the records.
    s = summary if all(o in summary for o in OUTCOMES) else {**summary, **tally(records)}
    line = _e(summary_line(s))
    if s.get("no_face"):
        line += (" <span class=\"msg\">Without a face: not assessed (the centre of the picture was scored, "
                 "for information only).</span>")
    if s.get("partial"):
        line = f'<b class="partial">Partial report.</b> {line}'
    threshold = model.get("threshold")
    shown_t = f"{threshold:.3f}" if isinstance(threshold, (int, float)) else threshold
    # The bands in order, none overlapping (the words every front end uses), and what "no sign found" is worth.
    scale = (f"{_e(scale_words(threshold))} (threshold {_e(shown_t)})" if isinstance(threshold, (int, float))
             else f"threshold {_e(shown_t)}")
    worth = no_sign_worth(model.get("unseen_fakes_missed"))
    model_line = (f"Model {_e(model.get('name'))} version {_e(model.get('version'))}: P(fake) {scale}; "
                  f"face finder {_e(model.get('face_detector'))}. {_e(worth)}{' ' if worth else ''}"
                  "Heatmaps show where the model looked, not proof of manipulation.")
    head = ('<tr><th>Picture</th><th>Heatmap</th><th data-sort="num">Faces</th>'
            '<th data-sort="text">File and message</th><th data-sort="text">Verdict</th>'
            '<th data-sort="num" aria-sort="descending">P(fake)</th><th>File metadata (provenance)</th></tr>')
    rows = "\n".join(_row(r, out_dir) for r in order)
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Deepfake scan report</title>
<style>{_CSS.replace("VERDICT_RULES", _verdict_rules())}</style></head>
<body>
<h1>Deepfake scan report</h1>
<p class="summary">{line}</p>
<p class="model">{model_line}</p>
<p class="model">Provenance: {_e(PROVENANCE_CAVEAT)}</p>
{_legend()}
<table id="results"><thead>{head}</thead>
<tbody>
{rows}
</tbody></table>
<footer>Created {created}. Click a column header to sort. A probability is the model's estimate,
not a certainty: check important cases by other means.</footer>
<script>{_JS}</script>
</body></html>
"""


def write_html(records: Sequence[ScanRecord], path: Path, model: dict[str, Any], summary: dict[str, Any]) -> Path:
    path.write_text(render_html(records, model, summary, path.parent), encoding="utf-8", errors=NAME_ERRORS)
    return path
