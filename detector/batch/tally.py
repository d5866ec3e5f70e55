"""One count of a scan's outcomes, shared by the summary line, the progress bar, the exit status and the reports.

Every file ends in exactly one of five outcomes: the four verdicts (``fake``, ``uncertain``, ``real``,
``no_face``; see ``detector.inference.results``) or ``unreadable``.  The CLI once counted the
threshold labels ("8 fake, 19 real") while its HTML report counted verdicts ("5 likely fake,
3 uncertain ..."): both now read these counts, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OUTCOMES = ("fake", "uncertain", "real", "no_face", "unreadable")
# How a count reads ("3 uncertain"): short, lower case, and never claiming a face is real.
OUTCOME_WORDS = {"fake": "likely fake", "uncertain": "uncertain", "real": "no sign found",
                 "no_face": "without a face", "unreadable": "unreadable"}


def outcome(verdict: str | None, label: str | None, error: str | None) -> str:
    """The one outcome of a file from its record's fields (a scan record or a Ray row)."""
    if error is not None:
        return "unreadable"
    if verdict in ("fake", "uncertain", "real", "no_face"):
        return verdict
    # Records from before verdicts existed: a scored file without one is judged by its label; a
    # file without a score (a video with no face in any frame) had no face to judge.
    return label if label in ("fake", "real") else "no_face"


def tally(rows: Iterable[Any]) -> dict[str, int]:
    """Counts of each outcome over records with ``verdict``, ``label`` and ``error`` attributes."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in rows:
        counts[outcome(r.verdict, r.label, r.error)] += 1
    return counts


def tally_words(counts: dict[str, int], always: tuple[str, ...] = ("fake", "uncertain", "real")) -> str:
    """``"2 likely fake, 1 uncertain, 5 no sign found, 1 without a face, 1 unreadable"``: the outcomes in
    ``always`` are said even at zero, the others only when they happened."""
    return ", ".join(f"{counts.get(o, 0)} {OUTCOME_WORDS[o]}" for o in OUTCOMES if o in always or counts.get(o, 0))


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 file"``, ``"2 files"``."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def n_files(n: int) -> str:
    return plural(n, "file")


def summary_line(s: dict[str, Any]) -> str:
    """A scan's summary in words, the same on stderr and in the HTML report: what was scanned, the five
    counts (:func:`tally_words`), the time, and -- when the scan was stopped early -- that it is partial."""
    text = (f"{n_files(s['files'])} scanned ({plural(s.get('images', 0), 'image')}, "
            f"{plural(s.get('videos', 0), 'video')}): {tally_words(s)}; {s['seconds']} s.")
    if s.get("partial"):
        text = (f"Partial: the scan was {s['partial']} after {s['files']} of {n_files(s.get('planned', s['files']))}. "
                + text)
    return text
