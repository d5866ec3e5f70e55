"""The "Can you beat the model?" game, without a web framework.

A :class:`Game` holds the images (a folder with ``real/`` and ``fake/`` below it, or a demo set
made at start-up) and one cached verdict per image; each player's progress is a :class:`GameState`
value the app keeps per session.  A player sees every image once, in a shuffled order (no two
rounds in a row from the same source photo when that can be avoided), before any comes back; the
first guess on an image counts and later clicks change nothing.  The methods return plain values,
in the order the Gradio tab's outputs take them.

The demo set is made at run time by this project's own code from the portraits that installed
packages ship (scikit-image's astronaut and cameraman, matplotlib's Grace Hopper): real variants
(the photo, mirrored, cropped wider, colour-graded, sharpened, re-compressed, brightened, tilted,
shrunk: global edits that make nothing fake) and fakes (one face part self-blended with :mod:`detector.training.sbi` and masks from
:mod:`detector.training.parts`, a part or the whole face swapped in from another portrait with
:mod:`detector.evaluation.edits`, a local retouch of the skin or the lips).
"""

from __future__ import annotations

import atexit
import functools
import heapq
import io
import logging
import random
import threading
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_CAM_METHOD, GAME_DIR_ENV
from ..errors import DetectorError
from ..inference.faces import crop_square, square_crop_box
from ..inference.images import load_image
from ..inference.results import DetectionResult, verdict_words
from ..inference.results import score_text as p_text
from ..training.data import read_folder
from .panels import score_html
from .pictures import portrait_photos

log = logging.getLogger("fdet.ui")
PROMPT = "Real or fake? Make your guess."
VIEW_MARGIN = 2.2  # what the player sees: the face's box times this, with some context
VIEW_SIDE = 512  # px, at most
VIEW_MIN = 320  # px, at least


@dataclass(frozen=True)
class GameItem:
    path: str
    truth: str  # "real" or "fake"
    source: str = ""  # the photo it was made from (demo set), so rounds can alternate between photos
    about: str = ""  # what was done to it, told after the guess


@dataclass(frozen=True)
class GameState:
    """One player's game: a shuffled order over the shared item list and two scores."""

    order: tuple[int, ...]
    position: int = 0
    rounds: int = 0
    user_correct: int = 0
    model_correct: int = 0
    answered: bool = False  # the current image has been guessed (a second click counts nothing)
    guess: str | None = None  # the first guess on the current image
    seed: int | None = None

    @property
    def current(self) -> int:
        return self.order[self.position % len(self.order)]


def list_game_items(folder: str | Path | None) -> list[GameItem]:
    """Every image under ``real/`` or ``fake/`` (any depth) of ``folder``; [] if none or no folder."""
    if not folder or not Path(folder).is_dir():
        return []
    items = []
    for s in read_folder(folder):
        stem = Path(s.path).stem
        items.append(GameItem(s.path, "fake" if s.label == 1 else "real", source=stem.split("__")[0],
                              about=stem.split("__")[1].replace("_", " ") if "__" in stem else ""))
    return items


def spread(order: list[int], sources: list[str] | None) -> list[int]:
    """``order`` rearranged so that no two neighbours share a source wherever that is possible.

    Each source keeps its own (shuffled) order; the next image comes from the source with the most
    images left that is not the previous one (the rule that always succeeds when any arrangement does).
    """
    if not sources:
        return order
    queues: dict[str, list[int]] = {}
    for i in order:
        queues.setdefault(sources[i], []).append(i)
    rank = {src: n for n, src in enumerate(queues)}  # ties: the source seen first in the shuffle
    heap = [(-len(q), rank[src], src) for src, q in queues.items()]
    heapq.heapify(heap)
    out: list[int] = []
    held = None  # the source just used, out of the heap for one turn
    while heap:
        count, r, src = heapq.heappop(heap)
        out.append(queues[src].pop(0))
        if held is not None:
            heapq.heappush(heap, held)
        held = (count + 1, r, src) if count + 1 < 0 else None
    if held is not None:  # only one source had images left: they follow one another
        out.extend(queues[held[2]])
    return out


def new_game(n_items: int, seed: int | None = None, sources: list[str] | None = None,
             avoid_first: int | None = None) -> GameState:
    """A shuffled pass over ``n_items`` images; ``avoid_first`` is not shown first (the last image of the previous pass)."""
    if n_items <= 0:
        raise ValueError("a game needs at least one image")
    order = list(range(n_items))
    random.Random(seed).shuffle(order)
    if avoid_first is not None and n_items > 1 and order[0] == avoid_first:
        order.append(order.pop(0))
    return GameState(order=tuple(spread(order, sources)), seed=seed)


def model_answer(res: DetectionResult) -> str | None:
    """What the model answered, as a guess: "fake" or "real" (NO SIGN FOUND), or None when it did not
    commit -- UNCERTAIN (it cannot tell) or NO FACE (nothing assessed) is not an answer, so never right."""
    return res.verdict if res.verdict in ("fake", "real") else None


def record_guess(state: GameState, guess: str, truth: str, model_label: str | None) -> GameState:
    """Score one round; guessing the same image again changes nothing.  ``model_label`` is
    :func:`model_answer`: None (the model did not commit) scores no point for the model."""
    if state.answered:
        return state
    return replace(state, rounds=state.rounds + 1, answered=True, guess=guess,
                   user_correct=state.user_correct + int(guess == truth),
                   model_correct=state.model_correct + int(model_label == truth))


def next_image(state: GameState, sources: list[str] | None = None) -> GameState:
    """The next image; after the last one of a pass, a new shuffled pass (scores kept)."""
    if state.position + 1 < len(state.order):
        return replace(state, position=state.position + 1, answered=False, guess=None)
    seed = None if state.seed is None else state.seed + 1
    fresh = new_game(len(state.order), seed, sources, avoid_first=state.current)
    return replace(state, order=fresh.order, position=0, answered=False, guess=None, seed=seed)


def score_text(state: GameState) -> str:
    return f"You {state.user_correct}/{state.rounds} — Model {state.model_correct}/{state.rounds}"


def score_panel(state: GameState | None) -> str:
    """The score as a large panel (:func:`detector.ui.panels.score_html`)."""
    if state is None:
        return score_html(0, 0, 0)
    return score_html(state.user_correct, state.model_correct, state.rounds)


# --------------------------------------------------------------------- the demo set


def _view(rgb: np.ndarray, face, margin: float = VIEW_MARGIN) -> np.ndarray:
    """What the player sees: the face with some context, between VIEW_MIN and VIEW_SIDE px (a small face is
    enlarged, real and fake alike, so that it can be looked at)."""
    h, w = rgb.shape[:2]
    box = square_crop_box(face, w, h, margin)
    return crop_square(rgb, box, min(VIEW_SIDE, max(VIEW_MIN, box[2])))


def _jpeg_again(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _grade(rgb: np.ndarray) -> np.ndarray:
    """A warm colour grade with more contrast over the whole picture (a global edit: still a real photo)."""
    x = rgb.astype(np.float32)
    x = (x - 128.0) * 1.12 + 128.0 + np.array([10.0, 2.0, -10.0], np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def _sharpen(rgb: np.ndarray) -> np.ndarray:
    import cv2

    soft = cv2.GaussianBlur(rgb, (0, 0), 2.0)
    return cv2.addWeighted(rgb, 1.7, soft, -0.7, 0)


def _tilt(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The picture turned by a few degrees (edges filled by reflection): still a real photo."""
    import cv2

    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _half(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((max(16, w // 2), max(16, h // 2)), Image.Resampling.LANCZOS))


def _retouch(rgb: np.ndarray, marks: dict, part: str) -> tuple[np.ndarray, str] | None:
    """A local edit through a part mask: smoothed skin over the face, or recoloured lips."""
    import cv2

    from ..training import parts

    if parts.frame(marks) is None:
        return None
    h, w = rgb.shape[:2]
    mask = parts.part_mask((h, w), marks, part, 1.0 if part == "face" else 1.2).astype(np.float32)
    d = parts.eye_distance(marks) or 40.0
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.12 * d))[..., None]
    if part == "face":
        ys, xs = np.nonzero(mask[..., 0] > 0.01)  # filter the face's rectangle only (the filter is slow)
        win = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        edited = rgb.astype(np.float32)
        edited[win] = cv2.bilateralFilter(np.ascontiguousarray(rgb[win]), 9, 40, 9)
        about = "skin smoothed by a beauty filter"
    else:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] - 8) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * 1.6 + 25, 0, 255)
        edited = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        about = "lips recoloured"
    out = edited * mask + rgb.astype(np.float32) * (1 - mask)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), about


def _self_blend_part(rgb: np.ndarray, face, marks: dict, part: str, rng: np.random.Generator,
                     margin: float) -> np.ndarray:
    """``part`` of the face blended in from an altered copy of itself (SBI), at the photo's own resolution.

    Only the *source* copy is altered, so every pixel outside the blend mask stays exactly as it was
    (an altered target would change the whole square around the face: an easy giveaway).  The
    alteration is random, and a strong one pastes a patch anyone sees at a glance (a white blob on
    the nose): of a few draws, the first that passes :func:`subtle` is kept, else the subtlest.
    """
    from ..training.sbi import self_blend

    h, w = rgb.shape[:2]
    x0, y0, side = square_crop_box(face, w, h, margin)
    crop = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])
    local = {k: (x - x0, y - y0) for k, (x, y) in marks.items()}
    best, best_cost = None, float("inf")
    for _ in range(BLEND_TRIES):
        fake, _ = self_blend(crop, local, rng, part, scale=1.15, ratio=1.0, alter="source")
        cost = blend_shift(crop, fake)
        if cost is None:  # nothing changed: not a fake
            continue
        if cost < best_cost:
            best, best_cost = fake, cost
        if subtle(cost):
            break
    out = rgb.copy()
    if best is not None:
        out[y0:y0 + side, x0:x0 + side] = best
    return out


BLEND_TRIES = 8
SUBTLE_SHIFT = 12.0  # brightness + tint change (0-255) over the blended pixels above which a patch is a giveaway


def blend_shift(before: np.ndarray, after: np.ndarray) -> float | None:
    """How visible a local edit is, over the pixels it changed: the mean brightness change plus the mean
    change of colour cast (a tint: green skin, or any colour on a grey photo); None when it changed nothing."""
    diff = after.astype(np.float32) - before.astype(np.float32)
    changed = np.abs(diff).max(axis=2) > 4
    if not changed.any():
        return None
    brightness = diff.mean(axis=2)
    tint = np.abs(diff - brightness[..., None]).max(axis=2)
    return float(abs(brightness[changed].mean())) + float(tint[changed].mean())


def subtle(shift: float) -> bool:
    """An edit a player has to look for (not a blob that gives the answer away)."""
    return shift <= SUBTLE_SHIFT


class Cancelled(Exception):
    """The demo set was not finished: the process is exiting."""


# Demo sets being made in the background.  They are daemon threads (a server can stop while one is
# running), but a daemon thread still inside OpenCV or TensorFlow when the interpreter finalises is
# killed through C++ frames and aborts the whole process; at exit they are told to stop and joined.
_MAKERS: set[threading.Thread] = set()
_EXITING = threading.Event()


@atexit.register
def _finish_makers(timeout: float = 60.0) -> None:
    _EXITING.set()
    for thread in list(_MAKERS):
        thread.join(timeout)


def make_demo_game_set(detector, out_dir: str | Path, seed: int = 0,
                       cancel: threading.Event | None = None) -> Path:
    """The built-in game set, made at run time from package-shipped portraits.

    Writes ``out_dir/real`` and ``out_dir/fake``; file names are ``<source>__<what was done>.png``
    (the game tells the player what was done after the guess, never before: the picture is sent as
    pixels).  The fakes are synthetic edits made here, not deepfakes from the wild.  Raises
    :class:`Cancelled` between two pictures once ``cancel`` is set.
    """
    from ..evaluation.edits import swap_part

    out = Path(out_dir)
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = {}
    for name, rgb in portrait_photos().items():
        if cancel is not None and cancel.is_set():
            raise Cancelled
        faces = detector.find_faces(rgb)
        if faces:
            photos[name] = (rgb, faces[0], {k: (float(x), float(y)) for k, (x, y) in faces[0].landmarks.items()})

    def save(truth: str, name: str, about: str, picture: np.ndarray) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        Image.fromarray(picture).save(out / truth / f"{name}__{about.replace(' ', '_')}.png", compress_level=1)

    for name, (rgb, face, marks) in photos.items():
        view = _view(rgb, face)
        save("real", name, "the original photo", view)
        save("real", name, "mirrored", np.ascontiguousarray(view[:, ::-1]))
        save("real", name, "cropped wider", _view(rgb, face, 3.2))
        save("real", name, "colour graded", _grade(view))
        save("real", name, "sharpened", _sharpen(view))
        save("real", name, "saved again as a low quality JPEG", _jpeg_again(view, 45))
        save("real", name, "brightened", np.clip(view.astype(np.int16) + 28, 0, 255).astype(np.uint8))
        save("real", name, "tilted slightly", _tilt(view, 4.0))
        save("real", name, "shrunk to half size", _half(view))
        for part, words in (("left_eye", "one eye"), ("nose", "the nose"), ("mouth", "the mouth"),
                            ("lower_face", "the lower face"), ("face", "the whole face")):
            edit = _self_blend_part(rgb, face, marks, part, rng, detector.crop_margin)
            save("fake", name, f"{words} self-blended from an altered copy", _view(edit, face))
        for donor, (drgb, _, dmarks) in photos.items():
            if donor == name:
                continue
            part, words = ("face", "whole face") if donor != "camera" else ("mouth", "mouth")
            edit = swap_part(rgb, marks, drgb, dmarks, part, 1.0)
            if edit is not None:
                save("fake", name, f"{words} swapped in from another portrait", _view(edit.image, face))
        for part in ("face", "mouth"):
            done = _retouch(rgb, marks, part)
            if done is not None:
                save("fake", name, done[1], _view(done[0], face))
    return out


class Game:
    """One set of game images shared by every player; thread-safe (results are cached per image)."""

    def __init__(self, detector, items: list[GameItem] | Future, note: str = ""):
        """``items``, or a future of them (the demo set is made in the background, off the start-up path)."""
        self.detector = detector
        self._items = items
        self.note = note  # Markdown shown above the game: where the images come from
        self.result = functools.lru_cache(maxsize=128)(self._analyze)

    @property
    def items(self) -> list[GameItem]:
        if isinstance(self._items, Future):
            try:
                self._items = self._items.result()
            except Exception as err:  # noqa: BLE001 - no demo set is no reason to stop the app
                log.error("the demo game set could not be made: %s", type(err).__name__)
                self._items = []
        return self._items

    @property
    def sources(self) -> list[str] | None:
        return [i.source for i in self.items] if any(i.source for i in self.items) else None

    @classmethod
    def from_folder(cls, detector, folder: str | Path | None, demo_dir: str | Path) -> Game:
        """The images under ``folder``; without any, a demo set made into ``demo_dir``."""
        items = list_game_items(folder)
        if items:
            return cls(detector, items, f"Images from the game folder ({len(items)} images).")
        pending: Future = Future()

        def make() -> None:
            try:
                pending.set_result(list_game_items(make_demo_game_set(detector, demo_dir, cancel=_EXITING)))
            except Exception as err:  # noqa: BLE001 - reported when the game first needs its items
                pending.set_exception(err)
            finally:
                _MAKERS.discard(threading.current_thread())

        maker = threading.Thread(target=make, name="fdet-demo-game", daemon=True)
        _MAKERS.add(maker)
        maker.start()
        # How to use one's own pictures is for whoever runs the server (its log), not for visitors.
        why = (f"The folder {folder} has no images under real/ and fake/." if folder
               else "No game folder is configured.")
        log.warning("game: %s Using the built-in demo set; set %s=/path/to/folder or start with --game-dir "
                    "/path/to/folder (real/ and fake/ subfolders, any depth).", why, GAME_DIR_ENV)
        note = ("**Demo set:** about 50 pictures, half real and half fake, made from the portraits that ship "
                "with this app's software: real photos with global edits (mirrored, cropped, colour-graded, "
                "sharpened, re-compressed, brightened, tilted, shrunk) and synthetic fakes (a face part blended, a "
                "face or mouth swapped in from another portrait, a local retouch). They only demonstrate the game; "
                "they are not deepfakes from the wild. The model scores a point only when it commits: an "
                "UNCERTAIN answer is not right.")
        return cls(detector, pending, note)

    def _analyze(self, index: int) -> DetectionResult:
        return self.detector.analyze(self.items[index].path, cam_method=DEFAULT_CAM_METHOD)

    def picture(self, state: GameState) -> np.ndarray | None:
        """The current image as pixels -- never by file name: the path would give the answer away."""
        try:
            return load_image(self.items[state.current].path, self.detector.limits).rgb
        except DetectorError:
            return None

    def start(self) -> tuple:
        """A new game: (state, picture, message, overlay, score)."""
        if not self.items:
            return None, None, "No images available.", None, ""
        state = new_game(len(self.items), sources=self.sources)
        return state, self.picture(state), PROMPT, None, score_panel(state)

    def _told(self, state: GameState, res: DetectionResult) -> str:
        item = self.items[state.current]
        guess = state.guess or ""
        you = "right" if guess == item.truth else "wrong"
        answer = model_answer(res)
        if answer is None:  # UNCERTAIN or NO FACE: the model gave no answer, so it scores nothing
            model = "no answer, so no point"
        else:
            model = f"counted as \"{answer}\": {'right' if answer == item.truth else 'wrong'}"
        what = f" ({item.about})" if item.about else ""
        return (f"Truth: **{item.truth.upper()}**{what}.\n\nYou said **{guess}**: {you}. The model says "
                f"**{verdict_words(res.verdict)}** (P(fake) = {p_text(res.p_fake)}): {model}.")

    def guess(self, state: GameState | None, guess: str) -> tuple:
        """Score ``guess`` ("real"/"fake") on the current image: (state, message, overlay, score).

        Only the first guess on an image counts; another click returns the same answer unchanged.
        """
        if state is None:
            return state, "Press **Next image** to start.", None, ""
        item = self.items[state.current]
        try:
            res = self.result(state.current)
        except DetectorError as err:
            return state, f"This image could not be analysed: {err}", None, score_panel(state)
        state = record_guess(state, guess, item.truth, model_answer(res))
        return state, self._told(state, res), res.overlay, score_panel(state)

    def next(self, state: GameState | None) -> tuple:
        """The next image (a new game when there is none yet): (state, picture, message, overlay, score)."""
        if not self.items:
            return self.start()
        state = new_game(len(self.items), sources=self.sources) if state is None else next_image(state, self.sources)
        return state, self.picture(state), PROMPT, None, score_panel(state)
