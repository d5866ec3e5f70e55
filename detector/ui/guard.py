"""One guarded call for every front-end event: a result, or one sentence for the user -- never a traceback.

A :class:`~detector.errors.DetectorError` is the input's fault and its message is shown as it is
(``refused``); anything else is our fault: its type goes to the log (nothing about the upload),
and the user gets the event's own ``unexpected`` sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import DetectorError

log = logging.getLogger("fdet.ui")
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: str | None = None  # one sentence for the user; None when the call succeeded
    refused: bool = False  # True: the input was refused (a DetectorError), False: an unexpected failure
    cause: DetectorError | None = None  # the refusal itself (its class picks the REST API's HTTP status)

    @property
    def ok(self) -> bool:
        return self.error is None

    def text(self, refused_prefix: str) -> str:
        """``"<prefix> <reason>"`` for a refused input, the plain sentence for a failure."""
        return f"{refused_prefix} {self.error}" if self.refused else str(self.error)

    def markdown(self, refused_prefix: str) -> str:
        """:meth:`text` in Markdown: the prefix in bold, or the whole failure sentence."""
        return f"**{refused_prefix}** {self.error}" if self.refused else f"**{self.error}**"


def guarded(call: Callable[[], T], unexpected: str, what: str) -> Outcome[T]:
    """Run ``call()``; ``what`` names the event in the log line of an unexpected failure."""
    try:
        return Outcome(call())
    except DetectorError as err:
        return Outcome(error=str(err), refused=True, cause=err)
    except Exception as err:  # noqa: BLE001 - the server keeps serving; no traceback to the user
        log.error("%s failed: %s", what, type(err).__name__)
        return Outcome(error=unexpected)
