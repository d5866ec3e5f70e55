"""Scan reports a person can open: ``report.json``, ``report.csv`` and a self-contained ``report.html``.

The HTML page is one file with nothing to fetch -- inline CSS, a few lines of inline JavaScript
for sorting, thumbnails as small base64 JPEGs -- so it can be mailed or archived with the scan.
Every path and message is HTML-escaped: file names are user data (``<img onerror=...>.jpg`` is a
valid file name).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import CSV_FIELDS, NAME_ERRORS, ScanRecord


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


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .3rem}
.summary{margin:.2rem 0 1rem;color:#333}.model{color:#666;font-size:.85rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e3e3;padding:.35rem .5rem;text-align:left;vertical-align:middle}
th{background:#f0f0f3;position:sticky;top:0}
th[data-sort]{cursor:pointer;user-select:none}th[data-sort]:hover{background:#e4e4ea}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img.thumb{max-width:160px;max-height:160px;display:block}
.v{font-weight:600;padding:.1rem .45rem;border-radius:.3rem;white-space:nowrap}
.v-fake{background:#fde2e4;color:#b3261e}.v-real{background:#e3f4e6;color:#1e7b34}
.v-none{background:#eee;color:#555}.v-error{background:#fff3cd;color:#7a5b00}
.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}
.msg{color:#444;font-size:.85rem}.bar{height:.35rem;background:#eee;border-radius:.2rem;margin-top:.2rem}
.bar>span{display:block;height:100%;border-radius:.2rem;background:#e63946}
footer{margin-top:1rem;color:#777;font-size:.8rem}
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


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _img(jpeg: bytes | None, alt: str) -> str:
    if not jpeg:
        return '<span class="msg">&mdash;</span>'
    data = base64.b64encode(jpeg).decode("ascii")
    return f'<img class="thumb" alt="{_e(alt)}" src="data:image/jpeg;base64,{data}">'


def _verdict(r: ScanRecord) -> tuple[str, str]:
    """(css class, text) of the verdict cell."""
    if r.error is not None:
        return "v-error", "unreadable"
    if r.label is None:
        return "v-none", "no face"
    return f"v-{r.label}", r.label.upper()


def _row(r: ScanRecord, out_dir: Path) -> str:
    cls, text = _verdict(r)
    p = "" if r.p_fake is None else f"{r.p_fake:.4f}"
    bar = "" if r.p_fake is None else f'<div class="bar"><span style="width:{100 * r.p_fake:.1f}%"></span></div>'
    name = Path(r.path).name
    message = r.error or r.message
    extra = ""
    if r.timeline:
        rel = os.path.relpath(r.timeline, out_dir)
        src = _e(Path(rel).as_posix())
        extra = f'<br><a href="{src}"><img class="thumb" alt="P(fake) over time" src="{src}"></a>'
    return (
        "<tr>"
        f'<td>{_img(r.thumb, name)}</td>'
        f'<td>{_img(r.overlay_thumb, "heatmap of " + name)}</td>'
        f'<td class="path" data-v="{_e(r.path.lower())}" title="{_e(r.path)}">{_e(r.path)}'
        f'<br><span class="msg">{_e(r.kind)}</span></td>'
        f'<td data-v="{_e(text)}"><span class="v {cls}">{_e(text)}</span></td>'
        f'<td class="num" data-v="{p or -1}">{p or "&mdash;"}{bar}</td>'
        f'<td class="num" data-v="{r.n_faces}">{r.n_faces}</td>'
        f'<td class="msg">{_e(message)}{extra}</td>'
        "</tr>"
    )


def render_html(records: Sequence[ScanRecord], model: dict[str, Any], summary: dict[str, Any],
                out_dir: Path | None = None) -> str:
    """The report page as a string. Rows start most suspicious first; headers re-sort on click."""
    out_dir = out_dir or Path(".")
    order = sorted(records, key=lambda r: -1.0 if r.p_fake is None else r.p_fake, reverse=True)
    s = summary
    line = (f"{s['files']} files scanned ({s['images']} images, {s['videos']} videos): "
            f"<b>{s['fake']} fake</b>, {s['real']} real")
    if s.get("no_face"):
        line += f" ({s['no_face']} without a face: the centre of the picture was scored)"
    if s.get("not_scored"):
        line += f", {s['not_scored']} videos without a face (not scored)"
    line += f", {s['errors']} unreadable &mdash; {s['seconds']} s."
    threshold = model.get("threshold")
    model_line = (f"Model {_e(model.get('name'))} version {_e(model.get('version'))}, "
                  f"threshold P(fake) &ge; {_e(threshold)} means fake; face finder {_e(model.get('face_detector'))}. "
                  "Heatmaps show where the model looked, not proof of manipulation.")
    head = ('<tr><th>Picture</th><th>Heatmap</th><th data-sort="text">File</th><th data-sort="text">Verdict</th>'
            '<th data-sort="num" aria-sort="descending">P(fake)</th><th data-sort="num">Faces</th>'
            "<th>Message</th></tr>")
    rows = "\n".join(_row(r, out_dir) for r in order)
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Deepfake scan report</title>
<style>{_CSS}</style></head>
<body>
<h1>Deepfake scan report</h1>
<p class="summary">{line}</p>
<p class="model">{model_line}</p>
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
