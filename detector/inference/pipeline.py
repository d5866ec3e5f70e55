"""The whole decision, one call: image -> faces -> crops -> one batched model pass -> result.

Every front end (Gradio, Streamlit, the scan CLI, the JSON API) calls :meth:`Detector.analyze`
and shows the :class:`~detector.inference.results.DetectionResult` it returns; none of them decides
anything itself.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path

import numpy as np

from explain.gradcam import CamExplainer
from explain.overlay import face_thumbnail, paste_heatmaps, render

from ..config import (
    CAM_BACKENDS,
    CAM_METHODS,
    DEFAULT_CAM_METHOD,
    DEFAULT_MODEL_DIR,
    ENGINE_ALIASES,
    ENGINES,
    FACE_FINDERS,
    CropConfig,
    Limits,
    Settings,
)
from ..errors import ConfigError, ModelError
from .bundle import LITE_FILE, load_bundle, load_lite, read_config, verify_weights
from .faces import FaceBox, cut_square, get_face_finder, square_crop_box
from .forward import Classifier, layout_for, lite_forward
from .images import ImageInput, LoadedImage, load_image
from .results import (
    UNSURE_LOGIT,
    DetectionResult,
    FaceResult,
    box_labels,
    evidence_signs,
    score_text,
    unsure_words,
    verdict_of,
    verdict_words,
)
from .unseen import unseen_fakes_missed
from .views import FaceViews, face_views, spec_of

log = logging.getLogger(__name__)
__all__ = ["UNSURE_LOGIT", "Detector", "get_detector"]  # UNSURE_LOGIT: the uncertain verdict's band (results.py)
THUMB_SIZE = 128  # px, the per-face heatmap thumbnails shown beside the face table


def _choice(variable: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if allowed, else a one-sentence :class:`ConfigError` naming the setting."""
    if value not in allowed:
        raise ConfigError(f"{variable} must be one of {', '.join(allowed)}; got {value!r}")
    return value


class Detector:
    """Loads the model once; ``analyze`` is safe to call from several threads.

    ``model_dir``, ``face_finder``, ``cam_backend`` and ``engine`` default to their settings in
    :mod:`detector.config` (``FDET_MODEL_DIR`` -- else the Hub model of ``FDET_HF_REPO``, else the
    bundled one --, ``FDET_FACE_FINDER``, ``FDET_CAM_BACKEND``, ``FDET_ENGINE``).
    """

    def __init__(self, model_dir: str | Path | None = None, face_finder: str | None = None,
                 limits: Limits | None = None, warmup: bool = True, cam_backend: str | None = None,
                 engine: str | None = None):
        settings = Settings()
        self.limits = limits or settings.limits
        t0 = time.perf_counter()
        if model_dir is None:
            if settings.model_dir is None:
                from .hub import resolve_model_dir  # FDET_HF_REPO, else the bundled model

                model_dir = resolve_model_dir()
            else:
                model_dir = settings.model_dir
        self.model_dir = Path(model_dir or settings.model_dir or DEFAULT_MODEL_DIR)
        engine = engine or settings.engine
        engine = _choice("FDET_ENGINE", ENGINE_ALIASES.get(engine, engine), ENGINES)
        cam_backend = _choice("FDET_CAM_BACKEND", cam_backend or settings.cam_backend, CAM_BACKENDS)
        face_finder = _choice("FDET_FACE_FINDER", face_finder or settings.face_finder, FACE_FINDERS)
        if engine == "tflite" and cam_backend != "fused":
            raise ConfigError(f"FDET_ENGINE=tflite cannot run FDET_CAM_BACKEND={cam_backend}, which needs "
                              "the Keras model; use FDET_ENGINE=auto or tensorflow")
        self._model = None
        self._model_lock = threading.Lock()
        self.config = read_config(self.model_dir)
        verify_weights(self.model_dir, self.config)
        # What a "no sign found" is worth, from the model's own evaluation (None: no such figure); read once
        # and carried with every result (model_info), so each front end can say it.
        missed = unseen_fakes_missed(self.model_dir)
        self._unseen_missed = None if missed is None else round(missed, 4)
        forward = load_lite(self.model_dir, self.config) if engine != "tensorflow" and cam_backend == "fused" else None
        if forward is None and engine == "tflite":
            raise ModelError(f"FDET_ENGINE=tflite, but {self.model_dir} has no valid {LITE_FILE}; write one with "
                             f"`python -m detector export-lite {self.model_dir}` or use FDET_ENGINE=auto.")
        self.layout = layout_for(self.config)
        self.spec = spec_of(self.config)
        if forward is not None:
            # The TF Lite copy answers everything; the Keras model (~1.4 s to load) only on demand.
            self.classifier = Classifier(lite_forward(forward), self.layout, list(self.config.inputs))
            self.explainer = CamExplainer(self.classifier.forward, self.layout)
            self.engine = "tflite"  # the engine in use: "tflite" or "tensorflow"
        else:
            self.classifier = Classifier.from_keras(self.model, self.layout)
            self.explainer = CamExplainer(self.classifier.forward, self.layout, cam_backend, self.model)
            self.engine = "tensorflow"
        self.crop_cfg = CropConfig(margin=self.config.crop_margin)
        self.finder = get_face_finder(face_finder, self.crop_cfg)
        if warmup:  # trace/run once so the first user does not pay for it
            self.score(face_views([np.zeros((128, 128, 3), np.uint8)], self.spec, self.has_patches),
                       CAM_METHODS[0])
            self.finder.warmup()
        self.load_seconds = time.perf_counter() - t0

    @property
    def model(self):
        """The Keras model (loaded, hash-checked, on first use when the TF Lite copy does the work)."""
        with self._model_lock:
            if self._model is None:
                self._model, _ = load_bundle(self.model_dir)
            return self._model

    @property
    def has_patches(self) -> bool:
        """Whether the model has the native-resolution artefact branch (model 2)."""
        return "patches" in self.config.inputs

    @property
    def threshold(self) -> float:
        return float(self.config.threshold)

    def model_info(self) -> dict:
        c = self.config
        # "face_detector" names the face finder: the key is part of the JSON every front end returns.
        info = {"name": c.name, "version": c.version, "architecture": c.architecture,
                "input_size": c.input_size, "threshold": c.threshold, "temperature": round(c.temperature, 4),
                "face_detector": self.finder.name, "engine": self.engine}
        info["unseen_fakes_missed"] = self._unseen_missed
        return info

    @property
    def crop_margin(self) -> float:
        """The square crop's side over the face box's longer side (from the model's card)."""
        return float(self.crop_cfg.margin)

    def label_for(self, p: float) -> str:
        return "fake" if p >= self.threshold else "real"

    def find_faces(self, rgb: np.ndarray) -> list[FaceBox]:
        """Every face the face finder sees in ``rgb``, largest first (no ``max_faces`` limit)."""
        return list(self.finder.detect(rgb))

    # ---------------------------------------------------------------- steps

    def find_crops(self, rgb: np.ndarray) -> tuple[list[FaceBox | None], list[tuple[int, int, int]], FaceViews, int]:
        """Faces (largest first, at most ``max_faces``), their square crops and the model's views of them.

        With no face, one ``None`` entry stands for the centre square of the whole image.
        """
        return self._crops(rgb, list(self.finder.detect(rgb)))

    def find_crops_many(self, rgbs: list[np.ndarray]) -> list[tuple | Exception]:
        """:meth:`find_crops` for many images, their faces found in one batched pass; an image's error in its place.

        Each image gets exactly what :meth:`find_crops` gives it alone (the face finder's
        ``detect_each``: ``detector.inference.mtcnn_nets.BatchedMtcnn``), so a batch scan and
        ``analyze`` agree whatever else is in the batch.
        """
        found = self.finder.detect_each(rgbs)
        out: list[tuple | Exception] = []
        for rgb, faces in zip(rgbs, found, strict=True):
            if isinstance(faces, Exception):
                out.append(faces)
                continue
            try:
                out.append(self._crops(rgb, list(faces)))
            except Exception as exc:  # noqa: BLE001 - one image's failure stays that image's
                out.append(exc)
        return out

    def _crops(self, rgb: np.ndarray, faces: list[FaceBox | None]):
        skipped = max(0, len(faces) - max(1, self.limits.max_faces))
        faces = faces[:max(1, self.limits.max_faces)] or [None]  # at least the largest face
        h, w = rgb.shape[:2]
        boxes = [square_crop_box(f, w, h, self.crop_cfg.margin) for f in faces]
        return faces, boxes, self.views(rgb, boxes), skipped

    def views(self, rgb: np.ndarray, boxes: list[tuple[int, int, int]]) -> FaceViews:
        """The model's inputs for the square crops ``boxes`` of ``rgb`` (native crops, capped, then views)."""
        return face_views([cut_square(rgb, b) for b in boxes], self.spec, self.has_patches)

    def verdict_for(self, p: float, face_found: bool = True) -> str:
        """One of the four verdict states (fake, real, uncertain, no_face) for a score at this model's threshold."""
        return verdict_of(p, self.threshold, face_found)

    def _message(self, faces: list[FaceResult], found: bool, verdict: str, p: float, skipped: int) -> str:
        """The result in one or two plain sentences: the headline's words, then what decided them."""
        t = self.threshold
        if not found:
            msg = ("No face found: the image was not assessed as a face. For information only, its centre "
                   f"scored P(fake) = {score_text(p)}, which says little about an image without a face.")
        else:
            words = verdict_words(verdict)
            why = f"P(fake) = {score_text(p)}"
            if verdict == "uncertain":
                why += f", {unsure_words(t)} around the threshold {t:.2f}: the model cannot tell"
            if len(faces) == 1:
                msg = f"1 face found: {words} ({why})."
            else:
                counts = {v: sum(f.verdict == v for f in faces) for v in ("fake", "uncertain", "real")}
                parts = [f"{n} {verdict_words(v).lower()}" for v, n in counts.items() if n]
                top = 1 + max(range(len(faces)), key=lambda i: faces[i].p_fake)
                msg = (f"{len(faces)} faces found ({', '.join(parts)}). The most suspicious face, #{top}, "
                       f"decides: {words} ({why}).")
        if skipped:
            more = "1 more small face was" if skipped == 1 else f"{skipped} more small faces were"
            msg += f" {more} not scored (limit {self.limits.max_faces})."
        return msg

    # ---------------------------------------------------------------- the call

    def analyze(self, source: ImageInput | LoadedImage, cam_method: str | None = DEFAULT_CAM_METHOD,
                opacity: float = 0.5, render_overlay: bool = True, filename: str | None = None) -> DetectionResult:
        """Score every face of ``source``; ``cam_method`` None skips heatmaps (faster).

        ``filename`` (an upload's own name) is a hint for reading the file's provenance metadata,
        which the loader reads from the same bytes (a path names itself).
        Raises :class:`detector.errors.ImageError` for input that is not a usable image.
        """
        if cam_method is not None and cam_method not in CAM_METHODS:
            raise ValueError(f"cam_method must be one of {CAM_METHODS} or None")
        times: dict[str, float] = {}
        t = time.perf_counter()
        image = source if isinstance(source, LoadedImage) else load_image(source, self.limits, filename)
        rgb = image.rgb
        times["decode"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        faces, boxes, views, skipped = self.find_crops(rgb)
        times["faces"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        probs, cams = self.score(views, cam_method)
        times["model"] = (time.perf_counter() - t) * 1000
        return self.assemble(image, faces, boxes, skipped, probs, cams, cam_method, opacity, render_overlay, times)

    def score(self, views: FaceViews, cam_method: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """P(fake) per face, plus its ``cam_method`` heatmap (a grid over its crop) unless it is None.

        The faces may come from many images: the batch scan (``detector.batch.scan``) stacks the
        views of several photos into one call here, which is where its speed comes from.
        """
        if cam_method is None:
            return self.classifier.predict({"image": views.image, "patches": views.patches}), None
        out = self.explainer.explain(views.feed(self.classifier.inputs), self.threshold, views.boxes,
                                     methods=(cam_method,))
        return out.p_fake, out.cams[cam_method]

    def assemble(self, image: LoadedImage, faces: list[FaceBox | None], boxes: list[tuple[int, int, int]],
                 skipped: int, probs: np.ndarray, cams: np.ndarray | None, cam_method: str | None,
                 opacity: float = 0.5, render_overlay: bool = True,
                 times: dict[str, float] | None = None) -> DetectionResult:
        """One image's :class:`DetectionResult` from its faces (``find_crops``) and scores (``score``)."""
        times = dict(times or {})
        rgb = image.rgb
        found = faces[0] is not None
        results = []
        for i, (face, box) in enumerate(zip(faces, boxes, strict=True)):
            p = float(probs[i])
            fbox = face.as_list() if face is not None else [box[0], box[1], box[2], box[2]]
            results.append(FaceResult(
                box=fbox, p_fake=p, label=self.label_for(p), verdict=self.verdict_for(p, found),
                detector_score=None if face is None else float(face.score),
                landmarks={k: [int(a), int(b)] for k, (a, b) in (face.landmarks.items() if face else [])},
                crop_box=list(box), heatmap=None if cams is None else cams[i]))
        top = max(results, key=lambda r: r.p_fake)
        label, verdict = top.label, top.verdict
        notes = list(image.notes)  # (no face: the message says so, once)

        overlay = heat = thumbs = None
        if render_overlay:
            t = time.perf_counter()
            if cams is not None:
                # signed: a face called fake shows evidence for fake, one called real evidence against it
                # (explain.gradcam explains the decision), each on its own colour scale
                heat = paste_heatmaps(rgb.shape, boxes, list(cams), evidence_signs(results))
            # Without a face nothing was assessed: the centre's heatmap stays in the JSON, off the picture.
            shown = heat if found else None
            overlay = render(rgb, shown, box_labels(results), opacity)
            # each face's crop with its own heatmap, for the thumbnails beside the face table
            thumbs = [face_thumbnail(rgb, tuple(f.crop_box), f.heatmap if found else None, THUMB_SIZE, opacity,
                                     f.label) for f in results]
            times["overlay"] = (time.perf_counter() - t) * 1000
        times["total"] = sum(v for k, v in times.items() if k != "total")
        return DetectionResult(
            faces=results, label=label, p_fake=top.p_fake, face_found=found,
            message=self._message(results, found, verdict, top.p_fake, skipped), notes=notes,
            image_size=[rgb.shape[1], rgb.shape[0]], model=self.model_info(), cam_method=cam_method,
            timings_ms=times, faces_skipped=skipped, overlay=overlay, heatmap=heat, verdict=verdict,
            provenance=image.provenance, thumbnails=thumbs)


def get_detector(model_dir: str | None = None, face_finder: str | None = None) -> Detector:
    """One shared :class:`Detector` per (model, face finder) for the apps."""
    return _cached_detector(None if model_dir is None else str(model_dir), face_finder)


@functools.lru_cache(maxsize=4)
def _cached_detector(model_dir: str | None, face_finder: str | None) -> Detector:
    # positional, normalised key: get_detector() and get_detector(None, None) share one model
    return Detector(model_dir, face_finder)
