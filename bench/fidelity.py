"""Heatmap fidelity: does the map point at what was manipulated?  Prints JSON.

    python -m bench.fidelity --data ../shared/data/faces --images 24 --out runs/bench/fidelity.json
    python -m bench.fidelity --quick          # a handful of package portraits, no ../shared needed

Ground truth comes from local edits with known masks (``detector.evaluation.edits``): one eye, the
nose, the mouth or the lower face (jaw) of a real photo, self-blended or swapped in from another
real face with colour matching, at two sizes.  Each edited photo goes through ``Detector.analyze``
(face finding, crop, model, heatmap) once per heatmap method, and for each method and part we
report, on the **fake-evidence map** (every edit is a fake; the map explained as if the face were called
fake -- what the app draws for a FAKE verdict):

* **pointing game**: the heatmap's peak lies on the edit (within 0.15 x the eye distance), next to
  two baselines that know nothing -- the centre of the face crop, and a uniformly random point in
  the crop (its expected hit rate is the dilated edit's share of the crop);
* **energy ratio**: the share of heat inside the edit divided by the edit's share of the crop
  (1 = no better than a flat map);
* **deletion / insertion** (Petsiuk et al. 2018): grey out (or reveal) the top-k % heat pixels of
  the crop and re-score -- P(fake) should fall faster than when the same number of pixels is
  greyed in random order;
* **restoration**: the deletion curve with a fill that is not itself an edit -- the top-k % heat
  pixels get back the *unedited* photo's values (the bench made the edit, so it has them).  A grey
  block is a sharp-edged local edit of its own, which a detector of local edits reads as
  manipulation; restoring the original removes the evidence and nothing else, so P(fake) must fall
  faster in heat order than in random order if the map points at the edit;
* **as shown**: the share of edits the model calls fake, the pointing game on the map the app
  actually draws (it explains the verdict: for a face called real, the evidence for "real"), and the
  pointing game on the faces called fake only;
* **model randomisation** (Adebayo et al. 2018): the maps of a model whose top layers were
  re-initialised must differ from the real model's (Spearman rank correlation over the grid).

Which method is the app's default is decided from this output (README, "Heatmaps").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import SHARED_FACES

DELETION_STEPS = (0.0, 0.05, 0.1, 0.2, 0.4)
TOLERANCE = 0.15  # pointing tolerance: this fraction of the eye distance
GREY = 128
SOURCES = ("FFHQ_TPDNE", "YONSEI", "LFWSWAP", "CELEBA_STYLEGAN")  # real photos with whole faces


def package_photos() -> list[np.ndarray]:
    """Portraits from installed packages, and mirrored / re-framed variants of them ("generated faces")."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    astro = skimage.data.astronaut()
    base = [astro[0:380, 60:440], hopper[0:480, 40:480]]
    out = []
    for b in base:
        for flip in (False, True):
            for scale in (1.0, 0.6):
                img = b[:, ::-1] if flip else b
                h, w = img.shape[:2]
                out.append(cv2.resize(np.ascontiguousarray(img), (int(w * scale), int(h * scale)),
                                      interpolation=cv2.INTER_AREA))
    return out


def shared_photos(root: Path, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` validation reals spread over :data:`SOURCES` (decoded, upright RGB)."""
    import csv

    from detector.inference.images import load_image

    with open(root / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "real" and r["split"] == "val" and r["source"] in SOURCES]
    rng = np.random.default_rng(seed)
    picked = []
    per = max(1, n // len(SOURCES))
    for src in SOURCES:
        cand = [r for r in rows if r["source"] == src]
        picked += [cand[i] for i in rng.permutation(len(cand))[:per]]
    return [load_image(root / r["path"]).rgb for r in picked[:n]]


def make_edits(det, photos: list[np.ndarray], seed: int = 0) -> tuple[list, int]:
    """Every (part, kind, size) edit of every photo whose single largest face has five landmarks."""
    from detector.evaluation import edits

    rng = np.random.default_rng(seed)
    faces = []
    for img in photos:
        found = det.find_faces(img)
        if found and found[0].landmarks and len(found[0].landmarks) == 5:
            faces.append((img, {k: tuple(map(float, v)) for k, v in found[0].landmarks.items()}))
    out, skipped = [], len(photos) - len(faces)
    for i, (img, marks) in enumerate(faces):
        donor_img, donor_marks = faces[(i + 1) % len(faces)]
        for part in edits.EDIT_PARTS:
            for scale in edits.SCALES:
                e = edits.self_blend_part(img, marks, part, rng, scale)
                if e is not None:
                    out.append(e)
                if len(faces) > 1:
                    e = edits.swap_part(img, marks, donor_img, donor_marks, part, scale)
                    if e is not None:
                        out.append(e)
    return out, skipped


def _in_crop(a: np.ndarray, box) -> np.ndarray:
    x0, y0, side = box
    return a[y0:y0 + side, x0:x0 + side]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a.ravel())).astype(np.float64)
    rb = np.argsort(np.argsort(b.ravel())).astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


CURVES = ("deletion", "deletion_random", "insertion", "insertion_random", "restoration", "restoration_random")


def step_crops(crop: np.ndarray, original: np.ndarray, order: np.ndarray, rand: np.ndarray, n: int) -> list:
    """The crops of one step of the curves (in :data:`CURVES` order): the first ``n`` pixels of the heat order
    (or of a random order) greyed, revealed on grey, or given back their unedited values."""
    flat, orig = crop.reshape(-1, 3), original.reshape(-1, 3)
    out = []
    for idx, how in ((order, "grey"), (rand, "grey"), (order, "reveal"), (rand, "reveal"),
                     (order, "restore"), (rand, "restore")):
        c = flat.copy()
        if how == "reveal":
            keep = np.full(len(c), False)
            keep[idx[:n]] = True
            c[~keep] = GREY
        else:
            c[idx[:n]] = GREY if how == "grey" else orig[idx[:n]]
        out.append(c.reshape(crop.shape))
    return out


def deletion_curves(det, image: np.ndarray, box, heat: np.ndarray, rng: np.random.Generator,
                    original: np.ndarray | None = None) -> dict:
    """P(fake) as the top-k % heat pixels of the crop are greyed (deletion), revealed on grey (insertion) or
    restored to the unedited photo's pixels (restoration: a deletion whose fill is not itself an edit),
    each beside the same number of pixels in random order."""
    from detector.inference.faces import cut_square

    crop = cut_square(image, box).copy()
    before = cut_square(original if original is not None else image, box)
    side = crop.shape[0]
    order = np.argsort(-heat.ravel(), kind="stable")
    rand = rng.permutation(side * side)
    crops = [c for k in DELETION_STEPS for c in step_crops(crop, before, order, rand, int(round(k * side * side)))]
    p = det.classifier.predict(det_views(det, crops)).reshape(len(DELETION_STEPS), len(CURVES))
    return {name: p[:, i] for i, name in enumerate(CURVES)}


def det_views(det, crops: list[np.ndarray]) -> dict:
    from detector.inference.views import face_views

    v = face_views(crops, det.spec, det.has_patches)
    return {"image": v.image, "patches": v.patches}


def randomised_explainer(det, seed: int = 0):
    """The detector's explainer over a copy of its model whose top layers were re-initialised (cascading
    randomisation of the logit, the last semantic block and the artefact branch's last stage)."""
    import keras

    from detector.inference.forward import keras_forward
    from explain.gradcam import CamExplainer

    model = keras.models.clone_model(det.model)
    model.set_weights(det.model.get_weights())
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name == "logit" or layer.name.startswith(("features_18", "features_17", "art_stage2")):
            layer.set_weights([rng.permutation(w.ravel()).reshape(w.shape) for w in layer.get_weights()])
    return CamExplainer(keras_forward(model, det.layout.layers), det.layout)


def run(det, photos: list[np.ndarray], methods: list[str], seed: int = 0, sanity_edits: int = 30,
        max_edits: int = 0) -> dict:
    from detector.evaluation.edits import EDIT_PARTS

    t0 = time.time()
    edit_list, skipped = make_edits(det, photos, seed)
    made = len(edit_list)
    if max_edits and len(edit_list) > max_edits:  # spread over the list: every part and kind still appears
        edit_list = [edit_list[i] for i in np.linspace(0, len(edit_list) - 1, max_edits).round().astype(int)]
    rng = np.random.default_rng(seed)
    rows = []  # one per (edit, method)
    maps_for_sanity = []
    checked = False
    for e_i, e in enumerate(edit_list):
        region = e.region
        tol = max(1, int(round(TOLERANCE * e.eye_distance)))
        dilated = cv2.dilate(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1,) * 2))
        # Detector.analyze's own steps, with every method's map from its one forward pass
        faces, boxes, views, _ = det.find_crops(e.image)
        feed = views.feed(det.classifier.inputs)
        passed = det.explainer.outputs(feed) if len(feed[0]) else None  # one forward pass for both
        out = det.explainer.explain(feed, det.threshold, views.boxes, methods=tuple(methods), outputs=passed)
        # Every edit is a fake, so the question is where the *fake* evidence lies: the maps explained as if
        # each face were called fake (threshold 0).  The app explains its verdict instead, which for a face
        # it calls real is the evidence for "real" -- scored separately below as "as shown".
        ev = det.explainer.explain(feed, 0.0, views.boxes, methods=tuple(methods), outputs=passed)
        if not checked:  # the same answer as the public call, once
            res = det.analyze(e.image, cam_method=methods[0], render_overlay=False)
            assert all(np.allclose(f.heatmap, out.cams[methods[0]][k], atol=1e-5) for k, f in enumerate(res.faces))
            checked = True
        if faces[0] is None:
            continue
        ys, xs = np.nonzero(region)
        k = next((k for k, (x0, y0, side) in enumerate(boxes)
                  if x0 <= xs.mean() < x0 + side and y0 <= ys.mean() < y0 + side), None)
        if k is None:
            continue
        box = boxes[k]
        side = box[2]
        d, r = _in_crop(dilated, box).astype(bool), _in_crop(region, box)
        if d.shape != (side, side) or not r.any():
            continue
        for m in methods:
            grid = ev.cams[m][k]
            heat = cv2.resize(np.asarray(grid, np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
            py, px = np.unravel_index(np.argmax(heat), heat.shape)
            shown = cv2.resize(np.asarray(out.cams[m][k], np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
            sy, sx = np.unravel_index(np.argmax(shown), shown.shape)
            c = side // 2
            share_heat = float(heat[r].sum() / max(heat.sum(), 1e-9))
            called_fake = bool(out.p_fake[k] >= det.threshold)
            row = {"edit": e_i, "method": m, "part": e.part, "kind": e.kind, "scale": e.scale,
                   "p_fake": float(out.p_fake[k]), "hit": bool(d[py, px]), "centre_hit": bool(d[c, c]),
                   "random_hit": float(d.mean()), "energy_ratio": share_heat / max(float(r.mean()), 1e-9),
                   "called_fake": called_fake, "hit_as_shown": bool(d[sy, sx])}
            row.update({key: v.tolist() for key, v in deletion_curves(det, e.image, box, heat, rng, e.original).items()})
            rows.append(row)
            if m == methods[0] and len(maps_for_sanity) < sanity_edits:
                maps_for_sanity.append((e.image, box, np.asarray(grid, np.float32)))
    out = {"n_photos": len(photos), "photos_without_usable_face": skipped, "n_edits_made": made, "n_edits": len(edit_list),
           "tolerance_eye_distance": TOLERANCE, "deletion_steps": list(DELETION_STEPS), "methods": {}}
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        out["methods"][m] = {"overall": summarise(mine),
                             "per_part": {p: summarise([r for r in mine if r["part"] == p]) for p in EDIT_PARTS},
                             "per_kind": {k: summarise([r for r in mine if r["kind"] == k]) for k in ("self_blend", "swap")}}
    if maps_for_sanity:
        out["sanity_model_randomisation"] = sanity(det, maps_for_sanity, methods[0])
    ranked = sorted(methods, key=lambda m: (-(out["methods"][m]["overall"]["pointing"] or 0),
                                            out["methods"][m]["overall"]["deletion_auc"] or 1))
    out["best_by_pointing"] = ranked[0] if ranked else None
    out["seconds"] = round(time.time() - t0, 1)
    return out


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0, "pointing": None, "centre_prior": None, "random_point": None, "energy_ratio": None,
                **{f"{c}_auc": None for c in CURVES}}
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    curve = lambda key: np.mean([r[key] for r in rows], axis=0)  # noqa: E731
    steps = np.asarray(DELETION_STEPS)
    auc = lambda key: float(np.trapezoid(curve(key), steps) / (steps[-1] - steps[0]))  # noqa: E731
    fakes = [r for r in rows if r["called_fake"]]
    return {"n": len(rows), "pointing": mean("hit"), "centre_prior": mean("centre_hit"),
            "random_point": mean("random_hit"), "energy_ratio": mean("energy_ratio"),
            "mean_p_fake": mean("p_fake"),
            # the map the app shows explains its verdict: fake evidence only for the faces it calls fake
            "share_called_fake": len(fakes) / len(rows), "pointing_as_shown": mean("hit_as_shown"),
            "pointing_called_fake": float(np.mean([r["hit"] for r in fakes])) if fakes else None,
            **{f"{c}_curve": [round(v, 4) for v in curve(c)] for c in CURVES},
            **{f"{c}_auc": auc(c) for c in CURVES}}


def sanity(det, items: list, method: str) -> dict:
    """Rank correlation between the real model's maps and a randomised model's, and the random model's pointing."""
    from detector.inference.faces import cut_square
    from detector.inference.views import face_views

    explainer = randomised_explainer(det)
    rhos = []
    for image, box, real_map in items:
        v = face_views([cut_square(image, box)], det.spec, det.has_patches)
        rand = explainer.explain(v.feed(det.classifier.inputs), 0.0, v.boxes, methods=(method,)).cams[method][0]
        rhos.append(spearman(real_map, rand))
    return {"method": method, "n": len(rhos), "mean_spearman": float(np.mean(rhos)),
            "mean_abs_spearman": float(np.mean(np.abs(rhos))),
            "note": "maps of a model with its top layers randomised must differ: |rho| well below 1"}


def main(argv: list[str] | None = None) -> int:
    from detector.inference.pipeline import Detector
    from explain import METHODS

    ap = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SHARED_FACES), help="the faces dataset (default ../shared/data/faces)")
    ap.add_argument("--images", type=int, default=24, help="real photos to edit, 20 edits each (default 24)")
    ap.add_argument("--methods", default="all", help=f"comma-separated heatmap methods or 'all' ({', '.join(METHODS)})")
    ap.add_argument("--model", default=None, help="model folder (default: the app's)")
    ap.add_argument("--quick", action="store_true", help="package portraits only (no ../shared), for a smoke run")
    ap.add_argument("--max-edits", type=int, default=0, help="score at most this many edits (spread evenly; 0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="also write the JSON here")
    a = ap.parse_args(argv)
    methods = list(METHODS) if a.methods == "all" else a.methods.split(",")
    det = Detector(a.model)
    root = Path(a.data)
    use_shared = not a.quick and (root / "manifest.csv").is_file()
    photos = shared_photos(root, a.images, a.seed) if use_shared else package_photos()
    result = {"model": det.model_info(), "photos": "shared validation reals: " + ", ".join(SOURCES) if use_shared
              else "package portraits (astronaut, Grace Hopper) and variants", **run(det, photos, methods, a.seed, max_edits=a.max_edits)}
    text = json.dumps(result, indent=2)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
