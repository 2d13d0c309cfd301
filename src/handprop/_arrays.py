"""Array checks shared by layers and losses: what comes in, in which dtype, of which shape.

Every public entry point turns its arguments into NumPy arrays here, so that the rules live in
one place:

* bool and integer arrays (``np.array([[1, 2], [3, 4]])``) become floating point;
* a module with a dtype (``Linear``) casts any float input to its own dtype, so a float32 model
  gives float32 outputs and gradients even when fed NumPy's default float64 arrays;
* a module without one (activations, losses) keeps float32 and float64 as they are and casts
  anything else to float32, the default dtype;
* complex, string and object arrays are refused with a ``TypeError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
DEFAULT_DTYPE = np.dtype(np.float32)
_LARGEST_32 = float(np.finfo(np.float32).max)  # a Python float up to this casts without overflow


def float_dtype(dtype: Any, owner: str) -> np.dtype:
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{owner}: dtype must be np.float32 or np.float64, got {dtype!r}")
    return resolved


def owner_name(owner: Any) -> str:
    """How an error message names the module or function: a string as is, a module by its
    one-line description (built only when an error is raised: the hot path never formats it)."""
    if isinstance(owner, str):
        return owner
    short = getattr(owner, "_short_name", None)
    return short() if short else repr(owner)


def as_float_array(value: Any, owner: Any, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """``value`` as a float ndarray (no copy when it already is one of the right dtype).

    ``dtype`` given: the result has that dtype. ``dtype`` None: float32/float64 are kept,
    bool/int/float16 become float32. ``owner`` names the caller in error messages.
    """
    if type(value) is np.ndarray and (
        value.dtype == dtype or (dtype is None and value.dtype in FLOAT_DTYPES)
    ):
        return value  # the common case, checked first: a float array that needs nothing
    if type(value) is float and dtype is not None and abs(value) <= _LARGEST_32:
        # a Python number (loss.backward()'s 1.0) that casts without overflow (a tiny one
        # becomes 0 or a subnormal silently): the same array as below, without the checks and
        # the errstate, 0.7 us instead of 2.9
        return np.asarray(value, dtype)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as error:  # ragged lists, some torch tensors
        hint = ""
        if "requires grad" in str(error):
            hint = "; pass tensor.detach() (it is a torch tensor that requires grad)"
        elif "ScalarType" in str(error):
            hint = "; convert the tensor first, e.g. tensor.float()"
        elif "inhomogeneous" in str(error):
            hint = "; every row must have the same length"
        kind = ValueError if isinstance(error, ValueError) else TypeError
        raise kind(
            f"{owner_name(owner)}: {name} cannot be made into an array ({error}){hint}"
        ) from None
    if array.dtype.kind not in "biuf":
        what = type(value).__name__ if not isinstance(value, np.ndarray) else "array"
        raise TypeError(
            f"{owner_name(owner)}: {name} must be a real numeric array, got {what} of dtype "
            f"{array.dtype}"
        )
    if dtype is None:
        dtype = array.dtype if array.dtype in FLOAT_DTYPES else DEFAULT_DTYPE
    # a float64 value beyond float32's range becomes inf, one below it 0 or a subnormal, as
    # torch's cast does, without a warning
    with np.errstate(over="ignore", under="ignore"):
        return array.astype(dtype, copy=False)


def is_private(array: np.ndarray) -> bool:
    """Whether nobody outside handprop can change ``array``'s values: it is read-only and owns
    its memory (or is a read-only view of such an array). Module outputs are made so."""
    while not array.flags.writeable:
        base = array.base
        if base is None:
            return True  # owns its memory, and nobody can write into it
        if not isinstance(base, np.ndarray):
            return False  # a view of someone else's buffer
        array = base
    return False


def freeze(array: np.ndarray) -> np.ndarray:
    """Make a fresh array read-only and return it (a module's output, a cached value)."""
    array.setflags(False)  # (write=False, passed by position: a third of the keyword's cost)
    return array


def private(array: np.ndarray, source: Any) -> np.ndarray:
    """``array`` (converted from the caller's ``source``) as a value that backward can rely on.

    What a forward keeps for its backward must not change in between. The caller may still
    hold ``source`` and write into it (a reused batch buffer, an in-place clip), so: an array
    that the conversion made fresh is frozen; one that is already private (the read-only
    output of another module) is kept; anything else, the caller's own array, is copied.
    """
    if array is not source and array.flags.owndata:
        return freeze(array)  # made by the conversion (a cast, a list): nobody else has it
    if is_private(array):
        return array
    return freeze(array.copy())


def shape_str(shape: tuple[int, ...]) -> str:
    """``(2, 3)``; a 1-tuple reads ``(3,)`` as NumPy prints it."""
    return str(tuple(shape))
