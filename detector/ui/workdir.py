"""The web app's private temp folder, gone on every stop: ``fdet-app-<pid>-<random>`` in the system temp dir.

It holds the examples, the demo game set, the re-encoded video previews and Gradio's cached copies
of uploads (:func:`hold_gradio_cache`).  It is removed when the app ends normally, on Ctrl-C and on SIGTERM (see
:func:`stop_on_signals`: how Docker, systemd and Spaces stop an app), and a process that died
without that chance (SIGKILL, a crash, power loss) leaves a folder that the next start removes
(:func:`remove_stale`).  A folder is stale when its owner is gone: its name carries the owner's
pid, and the owner holds an exclusive ``flock`` on the ``.lock`` file inside for its whole life --
the lock, unlike the pid, cannot be mistaken when a pid is reused or inside another container's
pid namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

from ..config import env_str

try:
    import fcntl
except ImportError:  # Windows: no flock; the pid alone tells dead from alive there
    fcntl = None  # type: ignore[assignment]

PREFIX = "fdet-app-"
LOCK_NAME = ".lock"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-")
_LIVE: weakref.WeakSet[WorkDir] = weakref.WeakSet()  # this process's folders (for the signal handlers)


class WorkDir:
    """A temp folder owned by this process; ``name`` is its path (as ``tempfile.TemporaryDirectory``'s)."""

    def __init__(self, root: str | Path | None = None):
        self.name = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
        self._lock = open(Path(self.name) / LOCK_NAME, "w")  # noqa: SIM115 - held open for the folder's life
        if fcntl is not None:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _LIVE.add(self)
        # At interpreter exit too (as TemporaryDirectory does), if nobody called cleanup().
        self._finalizer = weakref.finalize(self, _remove, self.name, self._lock)

    @property
    def path(self) -> Path:
        return Path(self.name)

    def cleanup(self) -> None:
        self._finalizer()  # runs once; later calls do nothing

    def __repr__(self) -> str:
        return f"WorkDir({self.name!r})"


_CACHE_ENV = "GRADIO_TEMP_DIR"
_cache_set_here: str | None = None  # the value this module gave GRADIO_TEMP_DIR, if any


def hold_gradio_cache(w: WorkDir) -> None:
    """Make Gradio keep its copies of uploads (and of outputs) inside ``w``, so they go with it.

    Gradio's own cache is one folder for every Gradio app on the machine (``/tmp/gradio``), which
    a stop cannot clear without touching other apps' files, and whose clean-up at shutdown misses
    uploads.  It reads ``GRADIO_TEMP_DIR`` when a Blocks and its server are created, so this is set
    before ``w``'s app is built.  A value the operator chose is left alone."""
    global _cache_set_here
    current = env_str(_CACHE_ENV)
    if current is None or current == _cache_set_here:
        _cache_set_here = str(w.path / "gradio")
        os.environ[_CACHE_ENV] = _cache_set_here


def _remove(name: str, lock) -> None:
    with contextlib.suppress(OSError):
        lock.close()  # releases the flock
    shutil.rmtree(name, ignore_errors=True)


def remove_all() -> None:
    """Remove every folder of this process now (the signal path: exit handlers may not get to run).

    Called again after the server has closed: a request still running when the signal came may
    have written a preview (and so re-created a folder) after the first removal."""
    for w in list(_LIVE):
        w.cleanup()
        shutil.rmtree(w.name, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def is_stale(folder: Path) -> bool:
    """Whether ``folder`` (an ``fdet-app-*`` folder) belongs to a process that is gone."""
    lock = folder / LOCK_NAME
    if fcntl is not None and lock.is_file():
        try:
            with open(lock, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only free when its owner has ended
                return True
        except BlockingIOError:
            return False
        except OSError:
            pass  # not ours to open: judge by the pid
    m = _NAME.match(folder.name)
    if m is None:
        return False  # no pid and no lock: cannot tell, so leave it
    # Without a lock file (a folder that is being created, or from a platform without flock) the pid decides.
    return not _pid_alive(int(m.group(1)))


def remove_stale(root: str | Path | None = None) -> list[Path]:
    """Remove the ``fdet-app-*`` folders in ``root`` (default: the system temp dir) whose process is gone."""
    base = Path(root or tempfile.gettempdir())
    removed = []
    try:
        candidates = sorted(base.glob(PREFIX + "*"))
    except OSError:
        return removed
    for folder in candidates:
        if folder.is_dir() and not folder.is_symlink() and is_stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT both become a KeyboardInterrupt, so that a server stopped either way closes (Gradio
    then deletes its cached uploads) and this process's folders are removed on the way out."""

    def interrupt(signum, frame):
        remove_all()  # first: whatever happens next, no upload stays on disk
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a process started from a script or a background job inherits SIGINT *ignored*, and Python
    # then installs no Ctrl-C handler of its own -- an "interrupt" would leave the server (and uploads) running.
    previous: dict = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, interrupt)
    except ValueError:  # not the main thread: leave signals to the caller
        pass
    try:
        yield
    except KeyboardInterrupt:
        pass  # the ordinary way to stop a server: no traceback
    finally:
        remove_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
