"""Compile the emulator's hot paths with numba when it is there, run them as Python when not.

numba has no wheels for 32-bit ARM (Raspberry Pi OS Legacy on a Pi Zero/1/2/3), so
every ``@njit`` function here must also be valid plain Python over numpy arrays.
Set ``QPU_EMULATOR_NO_NUMBA=1`` to force the plain-Python path (tests use it to
check both paths agree).
"""

from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

HAVE_NUMBA = False
if os.environ.get("QPU_EMULATOR_NO_NUMBA", "") in ("", "0"):
    try:
        import numba

        HAVE_NUMBA = True
    except ImportError:  # pragma: no cover - depends on the platform
        HAVE_NUMBA = False


def njit(func: F) -> F:
    """``numba.njit(cache=True, nogil=True)`` if numba is available, else the function itself."""
    if HAVE_NUMBA:
        compiled: Any = numba.njit(cache=True, nogil=True)(func)
        return compiled  # type: ignore[no-any-return]
    return func
