"""Ctrl-C, remembered as well as raised.

A KeyboardInterrupt that lands in a library's cleanup code (a `__del__`, a ctypes callback) is swallowed
there, and the run would go on to rename its outputs into place and exit 0. So the handler also sets a
flag: loops and the atomic writes check it, and the process exits 130 once it is set.
"""

from __future__ import annotations

import signal
import threading

_pressed = threading.Event()


def _remember(signum: int, frame: object) -> None:
    _pressed.set()
    raise KeyboardInterrupt


def catch_ctrl_c() -> None:
    """From now on SIGINT raises KeyboardInterrupt, as Python's default does, and is remembered (left alone
    where the process was started with it ignored)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _remember)


def stop_if_ctrl_c() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even if its first KeyboardInterrupt was swallowed."""
    if _pressed.is_set():
        raise KeyboardInterrupt


def ctrl_c_pressed() -> bool:
    return _pressed.is_set()
