"""Real partners for fake-only sources, matched on trivial properties so no shortcut separates them.

A source with fakes only (SDFD: Stable Diffusion portraits) cannot be trained or scored on its own:
it needs real faces beside it.  Taking "some reals" would hand the model a shortcut -- the SDFD
portraits are all 256 x 256, studio-lit and very sharp, unlike most real photos of the other
sources, and only one source (YONSEI, 881 images) has reals of that size.  So:

1. each fake is compared with every candidate real (square images, same split, face found) *as it
   would look at that real's size*: the fake is shrunk to the real's size (area averaging, then
   JPEG quality 90 like every file of the set) and its trivial properties -- width, height, file
   size, JPEG quality, brightness, sharpness, native face-crop side -- measured there;
2. greedy nearest-neighbour matching on standardised (log) features, hardest fakes first, without
   replacement, at most ``DONOR_CAP`` of any source's reals, so no source is emptied;
3. the fake is stored at its partner's size (``prepare`` re-crops it), and the partner *moves* to
   the fake-only source (each image still belongs to exactly one source), so leaving that source
   out of training leaves its partners out too.

This is the same equalisation the dataset's builders applied to FFHQ_TPDNE (one shared processing
history for both classes).  The shortcut probe (:mod:`detector.evaluation.probe`) then shows whether it
worked: its AUC on the paired source should be near 0.5.
"""

from __future__ import annotations

import numpy as np

MATCH_FEATURES = ("width", "height", "file_bytes", "jpeg_quality", "brightness", "sharpness", "side")
LOG = {"width", "height", "file_bytes", "sharpness", "side"}
DONOR_CAP = 0.2  # at most this share of one source's reals (per split) become partners
KEEP = 0.7  # caliper: keep the best-matched share of the fakes; the rest are left out (prepare.json counts them)


def _features(rows: list[dict], idx: np.ndarray) -> np.ndarray:
    cols = []
    for name in MATCH_FEATURES:
        v = np.array([float(rows[i][name]) for i in idx], np.float64)
        cols.append(np.log1p(np.maximum(v, 0)) if name in LOG else v)
    return np.stack(cols, axis=1)


def fake_only_sources(rows: list[dict]) -> list[str]:
    seen: dict[str, set] = {}
    for r in rows:
        seen.setdefault(r["source"], set()).add(int(r["label"]))
    return sorted(s for s, labels in seen.items() if labels == {1})


def shrink_jpeg(rgb: np.ndarray, width: int, height: int, quality: int = 90) -> tuple[np.ndarray, int]:
    """``rgb`` shrunk to ``width`` x ``height`` (area) and JPEG-coded at ``quality``: (decoded pixels, file bytes)."""
    import cv2

    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA) if rgb.shape[1] != width else rgb
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), len(buf)


def _as_if(rgb: np.ndarray, side_fraction: float, size: int) -> dict:
    """Trivial features of ``rgb`` shrunk to ``size`` x ``size`` (its face crop scaled alike)."""
    import cv2

    px, nbytes = shrink_jpeg(rgb, size, size)
    gray = cv2.cvtColor(px, cv2.COLOR_RGB2GRAY)
    return {"width": size, "height": size, "file_bytes": nbytes, "jpeg_quality": 90.0,
            "brightness": float(gray.mean()), "sharpness": float(cv2.Laplacian(gray, cv2.CV_64F).var()),
            "side": min(size, side_fraction * size)}


def match_resized(rows: list[dict], images: dict[int, np.ndarray], usable: np.ndarray | None = None,
                  cap: float = DONOR_CAP) -> dict[int, tuple[int, int]]:
    """{fake row: (partner real row, partner size)} for every fake-only source's fakes in ``images``.

    ``images`` maps a fake's row index to its decoded pixels; ``usable`` (bool per row) limits the
    candidate reals (e.g. to square images with a face found).
    """
    n = len(rows)
    usable = np.ones(n, bool) if usable is None else np.asarray(usable, bool)
    source = np.array([r["source"] for r in rows])
    label = np.array([int(r["label"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    square = np.array([int(r["width"]) == int(r["height"]) for r in rows])
    only = fake_only_sources(rows)
    pairs: dict[int, tuple[int, int]] = {}
    for sp in sorted(set(split.tolist())):
        fakes = [i for i in images if split[i] == sp]
        pool = np.where((label == 0) & (split == sp) & usable & square & ~np.isin(source, only))[0]
        if not fakes or not len(pool):
            continue
        sizes = sorted({int(rows[j]["width"]) for j in pool})
        px = _features(rows, pool)
        mu, sd = px.mean(axis=0), px.std(axis=0) + 1e-9
        pz = (px - mu) / sd
        dist = np.zeros((len(fakes), len(pool)))
        for a, i in enumerate(fakes):
            frac = float(rows[i]["side"]) / float(rows[i]["width"])
            by_size = {}
            for size in sizes:
                f = _as_if(images[i], frac, size)
                by_size[size] = (_features([f], np.array([0]))[0] - mu) / sd
            fz = np.stack([by_size[int(rows[j]["width"])] for j in pool])
            dist[a] = ((fz - pz) ** 2).sum(axis=1)
        left = {s: int(cap * np.sum(source[pool] == s)) for s in set(source[pool].tolist())}
        taken = np.zeros(len(pool), bool)
        for a in np.argsort(dist.min(axis=1))[::-1]:  # hardest-to-match fakes first
            for j in np.argsort(dist[a]):
                s = source[pool[j]]
                if not taken[j] and left[s] > 0:
                    taken[j] = True
                    left[s] -= 1
                    pairs[fakes[a]] = (int(pool[j]), int(rows[pool[j]]["width"]))
                    break
    return pairs


def caliper(rows: list[dict], images: dict[int, np.ndarray], pairs: dict[int, tuple[int, int]],
            keep: float = KEEP) -> dict[int, tuple[int, int]]:
    """The best-matched ``keep`` share of ``pairs`` (standardised distance at the partner's size)."""
    if not pairs:
        return {}
    reals = np.array([j for j, _ in pairs.values()])
    rx = _features(rows, reals)
    sd = rx.std(axis=0) + 1e-9
    dist = {}
    for (i, (_j, size)), r in zip(pairs.items(), rx, strict=True):
        f = _as_if(images[i], float(rows[i]["side"]) / float(rows[i]["width"]), size)
        dist[i] = float((((_features([f], np.array([0]))[0] - r) / sd) ** 2).sum())
    best = sorted(dist, key=dist.get)[:int(round(keep * len(dist)))]
    return {i: pairs[i] for i in best}


def match_partners(rows: list[dict], usable: np.ndarray | None = None, cap: float = DONOR_CAP) -> dict[int, str]:
    """{real row index: fake-only source it moves to}, matching on the stored features as they are.

    ``usable`` (bool per row) limits both fakes and candidate reals (e.g. to rows with a face found).
    """
    n = len(rows)
    usable = np.ones(n, bool) if usable is None else np.asarray(usable, bool)
    source = np.array([r["source"] for r in rows])
    label = np.array([int(r["label"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    moved: dict[int, str] = {}
    for target in fake_only_sources(rows):
        for sp in sorted(set(split[source == target].tolist())):
            fakes = np.where((source == target) & (split == sp) & usable)[0]
            pool = np.where((label == 0) & (split == sp) & usable & ~np.isin(source, fake_only_sources(rows)))[0]
            pool = np.array([i for i in pool if i not in moved], int)
            if not len(fakes) or not len(pool):
                continue
            fx, px = _features(rows, fakes), _features(rows, pool)
            mu, sd = px.mean(axis=0), px.std(axis=0) + 1e-9
            fx, px = (fx - mu) / sd, (px - mu) / sd
            left = {s: int(cap * np.sum(source[pool] == s)) for s in set(source[pool].tolist())}
            taken = np.zeros(len(pool), bool)
            # hardest-to-match fakes first, so the easy ones do not use up their partners
            dist = ((fx[:, None, :] - px[None, :, :]) ** 2).sum(axis=2)
            for f in np.argsort(dist.min(axis=1))[::-1]:
                for j in np.argsort(dist[f]):
                    s = source[pool[j]]
                    if not taken[j] and left[s] > 0:
                        taken[j] = True
                        left[s] -= 1
                        moved[int(pool[j])] = target
                        break
    return moved


def apply(rows: list[dict], moved: dict[int, str]) -> list[dict]:
    """Copies of ``rows`` with the partners' source set to their fake-only source (``donor`` keeps the old one)."""
    out = []
    for i, r in enumerate(rows):
        if i in moved:
            r = {**r, "donor": r["source"], "source": moved[i]}
        out.append(r)
    return out
