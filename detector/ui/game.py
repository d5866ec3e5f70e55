"""The "Can you beat the model?" game, without a web framework.

A :class:`Game` holds the images (a folder with ``real/`` and ``fake/`` below it, or a demo set of
synthetic self-blends made at start-up) and one cached verdict per image; each player's progress
is a :class:`GameState` value the app keeps per session.  The methods return plain values, in the
order the Gradio tab's outputs take them.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_CAM_METHOD, GAME_DIR_ENV
from ..errors import DetectorError
from ..inference.faces import crop_square, square_crop_box
from ..inference.images import load_image
from ..inference.results import DetectionResult
from ..training.data import read_folder
from .pictures import example_photos

PROMPT = "Real or fake? Make your guess."


@dataclass(frozen=True)
class GameItem:
    path: str
    truth: str  # "real" or "fake"


@dataclass(frozen=True)
class GameState:
    """One player's game: a shuffled order over the shared item list and two scores."""

    order: tuple[int, ...]
    position: int = 0
    rounds: int = 0
    user_correct: int = 0
    model_correct: int = 0
    answered: bool = False  # the current image has been guessed (a second click counts nothing)

    @property
    def current(self) -> int:
        return self.order[self.position % len(self.order)]


def list_game_items(folder: str | Path | None) -> list[GameItem]:
    """Every image under ``real/`` or ``fake/`` (any depth) of ``folder``; [] if none or no folder."""
    if not folder or not Path(folder).is_dir():
        return []
    return [GameItem(s.path, "fake" if s.label == 1 else "real") for s in read_folder(folder)]


def new_game(n_items: int, seed: int | None = None) -> GameState:
    if n_items <= 0:
        raise ValueError("a game needs at least one image")
    order = list(range(n_items))
    random.Random(seed).shuffle(order)
    return GameState(order=tuple(order))


def record_guess(state: GameState, guess: str, truth: str, model_label: str) -> GameState:
    """Score one round; guessing the same image twice changes nothing."""
    if state.answered:
        return state
    return replace(state, rounds=state.rounds + 1, answered=True,
                   user_correct=state.user_correct + int(guess == truth),
                   model_correct=state.model_correct + int(model_label == truth))


def next_image(state: GameState) -> GameState:
    return replace(state, position=(state.position + 1) % len(state.order), answered=False)


def score_text(state: GameState) -> str:
    return f"You {state.user_correct}/{state.rounds} — Model {state.model_correct}/{state.rounds}"


def make_demo_game_set(detector, out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny built-in game set, made at run time from package-shipped photos.

    real: the astronaut and Grace Hopper portraits (and mirror images); fake: the same faces
    self-blended with :func:`detector.training.sbi.self_blend` (a synthetic blend, not a real deepfake)
    and pasted back into the photo.  Writes ``out_dir/real`` and ``out_dir/fake``.
    """
    import cv2

    from ..training.sbi import self_blend

    out = Path(out_dir)
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blend_size = 256
    for name, rgb in example_photos().items():
        if name == "coffee":
            continue
        h, w = rgb.shape[:2]
        faces = detector.find_faces(rgb)
        if not faces:
            continue
        face = faces[0]
        # What the player sees: the face with some context, at most 512 px.
        view = square_crop_box(face, w, h, 2.2)
        real = crop_square(rgb, view, min(512, view[2]))
        Image.fromarray(real).save(out / "real" / f"{name}.png")
        Image.fromarray(real[:, ::-1]).save(out / "real" / f"{name}_mirror.png")
        x0, y0, side = square_crop_box(face, w, h, detector.crop_margin)
        k = blend_size / side
        marks = {n: (int((x - x0) * k), int((y - y0) * k)) for n, (x, y) in face.landmarks.items()}
        for i in range(2):
            crop = crop_square(rgb, (x0, y0, side), blend_size)
            fake_crop, mask = self_blend(crop, marks or None, rng)
            # Paste back through the blend mask, so pixels outside it stay exactly as they were
            # (a plain paste would leave a resampled square around the face: an easy giveaway).
            up = cv2.resize(fake_crop, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
            m = cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR)[..., None]
            pasted = rgb.copy()
            region = pasted[y0:y0 + side, x0:x0 + side].astype(np.float32)
            pasted[y0:y0 + side, x0:x0 + side] = np.clip(up * m + region * (1 - m), 0, 255).astype(np.uint8)
            fake = crop_square(pasted, view, min(512, view[2]))
            Image.fromarray(fake).save(out / "fake" / f"{name}_blend{i + 1}.png")
    return out


class Game:
    """One set of game images shared by every player; thread-safe (results are cached per image)."""

    def __init__(self, detector, items: list[GameItem], note: str = ""):
        self.detector = detector
        self.items = items
        self.note = note  # Markdown shown above the game: where the images come from
        self.result = functools.lru_cache(maxsize=64)(self._analyze)

    @classmethod
    def from_folder(cls, detector, folder: str | Path | None, demo_dir: str | Path) -> Game:
        """The images under ``folder``; without any, a demo set made into ``demo_dir``."""
        items = list_game_items(folder)
        if items:
            return cls(detector, items, f"Images from the game folder ({len(items)} images).")
        items = list_game_items(make_demo_game_set(detector, demo_dir))
        why = (f"The folder `{folder}` has no images under `real/` and `fake/`." if folder
               else "No game folder is configured.")
        note = (f"{why} Set `{GAME_DIR_ENV}=/path/to/folder` or start with `python app.py --game-dir "
                "/path/to/folder` (a folder with `real/` and `fake/` subfolders, any depth).\n\n"
                "**Demo set:** the fakes below are *synthetic self-blends* made from the real photos "
                "(the training trick, not real deepfakes), so this only demonstrates the game.")
        return cls(detector, items, note)

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
        state = new_game(len(self.items))
        return state, self.picture(state), PROMPT, None, score_text(state)

    def guess(self, state: GameState | None, guess: str) -> tuple:
        """Score ``guess`` ("real"/"fake") on the current image: (state, message, overlay, score)."""
        if state is None:
            return state, "Press **Next image** to start.", None, ""
        item = self.items[state.current]
        try:
            res = self.result(state.current)
        except DetectorError as err:
            return state, f"This image could not be analysed: {err}", None, score_text(state)
        already = state.answered
        state = record_guess(state, guess, item.truth, res.label)
        you = "right" if guess == item.truth else "wrong"
        model = "right" if res.label == item.truth else "wrong"
        text = (f"Truth: **{item.truth.upper()}**. You said {guess} ({you}); the model says "
                f"{res.label} with P(fake) = {res.p_fake:.2f} ({model}).")
        if already:
            text += " (Already scored: press **Next image**.)"
        return state, text, res.overlay, score_text(state)

    def next(self, state: GameState | None) -> tuple:
        """The next image (a new game when there is none yet): (state, picture, message, overlay, score)."""
        if not self.items:
            return self.start()
        state = new_game(len(self.items)) if state is None else next_image(state)
        return state, self.picture(state), PROMPT, None, score_text(state)
