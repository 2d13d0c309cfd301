"""``no_grad()``: run forward passes that keep nothing for backward, as ``torch.no_grad()``.

Inside ``with handprop.no_grad():`` (or in a function decorated with ``@handprop.no_grad()``)
a forward pass computes its output but caches nothing: an evaluation pass between a training
forward and its backward leaves that backward's cached values alone, and a backward whose
forward ran under ``no_grad`` raises a ``RuntimeError`` saying so.

Examples:
    >>> import numpy as np
    >>> import handprop
    >>> from handprop.layers import Linear
    >>> layer = Linear(2, 1, rng=0)
    >>> with handprop.no_grad():
    ...     y = layer(np.ones((1, 2)))
    >>> handprop.is_grad_enabled()
    True
    >>> layer.backward(np.ones((1, 1)))
    Traceback (most recent call last):
    ...
    RuntimeError: Linear(...): backward() after a forward() run under handprop.no_grad(), ...
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["enable_grad", "is_grad_enabled", "no_grad"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _GradMode(threading.local):
    """Whether forward passes cache for backward; per thread, like torch's grad mode."""

    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return _mode.enabled


class _SetGradMode:
    """A context manager (and decorator) that sets grad mode, restoring it on exit.

    As a decorator (``@no_grad()``, or bare ``@no_grad`` as torch allows) it sets the mode for
    each call of the function; for a generator function, while each of the generator's steps
    runs, the caller's own mode coming back between them, as torch's does.
    """

    _value = True

    def __new__(cls, function: Callable[..., Any] | None = None) -> Any:
        self = super().__new__(cls)
        return self if function is None else self(function)  # bare @no_grad

    def __init__(self, function: Callable[..., Any] | None = None) -> None:
        pass

    def __enter__(self) -> None:
        self._previous = _mode.enabled
        _mode.enabled = self._value

    def __exit__(self, *exc_info: object) -> None:
        _mode.enabled = self._previous

    def __call__(self, function: _F) -> _F:
        mode = type(self)
        if inspect.isgeneratorfunction(function):
            return _each_step_in(mode, function)  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _each_step_in(mode: type, function: Callable[..., Any]) -> Callable[..., Any]:
    """A generator function whose every step (first, ``send``, ``throw``, ``close``) runs
    inside ``mode()``; the caller's mode is back between steps (torch's ``_wrap_generator``)."""

    @functools.wraps(function)
    def generator(*args: Any, **kwargs: Any) -> Any:
        steps = function(*args, **kwargs)
        try:
            with mode():
                response = steps.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with mode():
                        steps.close()
                    raise
                except BaseException as error:
                    with mode():
                        response = steps.throw(error)
                else:
                    with mode():
                        response = steps.send(request)
        except StopIteration as stop:
            return stop.value

    return generator


class no_grad(_SetGradMode):  # torch's name
    """Forward passes keep nothing for backward (a context manager and a decorator, with or
    without parentheses)."""

    _value = False


class enable_grad(_SetGradMode):  # torch's name
    """Turn caching back on inside a ``no_grad`` block (a context manager and a decorator)."""

    _value = True
