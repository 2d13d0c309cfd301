"""Exercises graded offline: write a backward, and ``handprop exercise check`` grades it.

``handprop exercise list`` shows them; ``handprop exercise start NAME [DIR]`` writes
``NAME.py``, a layer (or loss) whose forward is written and whose backward is left to write,
with the steps as comments; ``handprop exercise check NAME FILE`` imports the file, takes the
class named like handprop's (``Linear``, ``ReLU``, ...), and grades it with ``check_module``
against handprop's own class, with the same parameters, on several cases (odd shapes, an
input on a kink, ties): a per-tensor table for each case, the likely mistake named, and exit
status 0 only when every case passes.

Examples:
    >>> from handprop.exercises import EXERCISES, grade
    >>> sorted(EXERCISES)[:3]
    ['attention', 'avgpool2d', 'batchnorm1d']
    >>> from handprop.layers import Linear     # handprop's own Linear passes its exercise
    >>> all(result.passed for result in grade("linear", Linear))
    True
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import layers, losses
from ..explain.diagnose import ModuleReport, check_module
from ..layers.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)
from ..module import Module

__all__ = ["EXERCISES", "Exercise", "ExerciseFileError", "grade", "load_class", "start"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Case:
    """One grading case: the constructor's arguments, the input (a tuple of them for a module
    with several, as a recurrent cell's ``(x, h)``), and for a loss the target."""

    args: tuple
    x: Any
    target: Any = None
    note: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)  # keyword arguments (HuberLoss's delta)

    def call(self, class_name: str) -> str:
        """The constructor call as written: ``Linear(3, 2)``, ``HuberLoss(delta=0.5)``."""
        words = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{class_name}({', '.join(words)})"


@dataclass(frozen=True)
class Exercise:
    """An exercise: the class to write, what it is, its cases and handprop's reference."""

    class_name: str
    summary: str
    cases: Callable[[], list[Case]]
    reference: Callable[..., Any]  # handprop's class for the same arguments, float64
    is_loss: bool = False
    inputs: tuple[str, ...] = ("x", "h", "c")  # the inputs' names in the report


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _kinked(shape) -> np.ndarray:
    """Values from {-1, -0.5, 0, 0.5, 1}: zeros (kinks) and ties on purpose."""
    return _rng(1).integers(-2, 3, size=shape) / 2.0


def _states(seed: int, shape, count: int) -> tuple[np.ndarray, ...]:
    """``count`` states of one shape (an LSTM's ``(h, c)``), drawn from one seed."""
    rng = _rng(seed)
    return tuple(rng.standard_normal(shape) for _ in range(count))


_NO_DROPOUT = {"dropout": 0.0}  # (the encoder layer's: graded without randomness)
_PRE_NORM = {"dropout": 0.0, "norm_first": True}


def _batch_first(args: tuple, seed: int, shapes: list, note: str = "") -> Case:
    """A case of inputs (N, L, E): built with torch's ``batch_first=True``."""
    return Case(args, _several(seed, *shapes), note=note, kwargs={"batch_first": True})


def _several(seed: int, *shapes) -> tuple[np.ndarray, ...]:
    """One array per shape, drawn from one seed: a module's several inputs."""
    rng = _rng(seed)
    return tuple(rng.standard_normal(shape) for shape in shapes)


def _probabilities(shape, seed) -> np.ndarray:
    return _rng(seed).uniform(0.05, 0.95, size=shape)


EXERCISES: dict[str, Exercise] = {
    "linear": Exercise(
        "Linear",
        "y = x @ W.T + b: dJ/dW, dJ/db and dJ/dx",
        lambda: [
            Case((3, 2), _rng(0).standard_normal((4, 3))),
            Case((1, 1), _rng(1).standard_normal((1, 1)), note="one sample, one feature"),
            Case((5, 3), _rng(2).standard_normal((2, 5)), note="fewer samples than features"),
        ],
        lambda i, o: layers.Linear(i, o, dtype=np.float64),
    ),
    "relu": Exercise(
        "ReLU",
        "max(0, x), and torch's choice at the kink x = 0",
        lambda: [
            Case((), _kinked((3, 4)), note="zeros on purpose: the kink"),
            Case((), _rng(2).standard_normal((2, 5))),
        ],
        layers.ReLU,
    ),
    "sigmoid": Exercise(
        "Sigmoid",
        "1 / (1 + exp(-x)), its derivative from its output",
        lambda: [
            Case((), _rng(3).standard_normal((3, 4))),
            Case((), np.array([[-8.0, -2.0, 0.0, 2.0, 8.0]]), note="near saturation"),
        ],
        layers.Sigmoid,
    ),
    "tanh": Exercise(
        "Tanh",
        "tanh(x), its derivative from its output",
        lambda: [Case((), _rng(4).standard_normal((3, 4)))],
        layers.Tanh,
    ),
    "leaky_relu": Exercise(
        "LeakyReLU",
        "x or negative_slope * x, and torch's slope at the kink x = 0",
        lambda: [
            Case((0.01,), _kinked((3, 4)), note="zeros on purpose: the kink"),
            Case((0.2,), _rng(18).standard_normal((2, 5))),
        ],
        layers.LeakyReLU,
    ),
    "gelu": Exercise(
        "GELU",
        "x * Phi(x): the product rule, with the normal density",
        lambda: [
            Case((), _rng(19).standard_normal((3, 4)) * 2),
            Case((), np.array([[-6.0, -1.0, 0.0, 1.0, 6.0]]), note="far in the tails too"),
        ],
        layers.GELU,
    ),
    "softmax": Exercise(
        "Softmax",
        "softmax over a row: the full Jacobian, not its diagonal",
        lambda: [
            Case((1,), _rng(5).standard_normal((3, 4))),
            Case((0,), _rng(6).standard_normal((4, 2)), note="dim=0: over the columns"),
        ],
        layers.Softmax,
    ),
    "log_softmax": Exercise(
        "LogSoftmax",
        "log-softmax over a row: g minus the softmax times the row sum of g",
        lambda: [
            Case((1,), _rng(20).standard_normal((3, 4))),
            Case((0,), _rng(21).standard_normal((4, 2)) * 10, note="dim=0, large logits"),
        ],
        layers.LogSoftmax,
    ),
    "bce": Exercise(
        "BCELoss",
        "binary cross-entropy of probabilities, averaged",
        lambda: [
            Case((), _probabilities((4, 1), 7), _rng(7).integers(0, 2, (4, 1)).astype(float)),
            Case((), _probabilities((2, 3), 8), _rng(8).integers(0, 2, (2, 3)).astype(float)),
        ],
        losses.BCELoss,
        is_loss=True,
    ),
    "cross_entropy": Exercise(
        "CrossEntropyLoss",
        "cross-entropy of logits and class indices, averaged over the rows",
        lambda: [
            Case((), _rng(9).standard_normal((4, 3)), np.array([0, 2, 1, 2])),
            Case((), _rng(10).standard_normal((1, 5)), np.array([4]), note="one row"),
        ],
        losses.CrossEntropyLoss,
        is_loss=True,
    ),
    "bce_with_logits": Exercise(
        "BCEWithLogitsLoss",
        "binary cross-entropy on logits: sigmoid(z) - t, averaged",
        lambda: [
            Case((), _rng(22).standard_normal((4, 1)) * 3, _rng(22).integers(0, 2, (4, 1)) * 1.0),
            Case((), np.array([[-30.0, 0.0, 30.0]]), np.array([[1.0, 0.0, 1.0]]), note="saturated"),
        ],
        losses.BCEWithLogitsLoss,
        is_loss=True,
    ),
    "nll": Exercise(
        "NLLLoss",
        "negative log-likelihood of log-probabilities: -1/N at each row's class",
        lambda: [
            Case((), layers.log_softmax(_rng(23).standard_normal((4, 3))), np.array([2, 0, 0, 1])),
            Case((), layers.log_softmax(_rng(24).standard_normal((1, 5))), np.array([3])),
        ],
        losses.NLLLoss,
        is_loss=True,
    ),
    "mse": Exercise(
        "MSELoss",
        "mean squared error: 2 (p - t), averaged",
        lambda: [
            Case((), _rng(25).standard_normal((4, 1)), _rng(26).standard_normal((4, 1))),
            Case((), _rng(27).standard_normal((3, 2)), _rng(28).standard_normal((3, 2))),
        ],
        losses.MSELoss,
        is_loss=True,
    ),
    "l1": Exercise(
        "L1Loss",
        "mean absolute error: the sign of p - t, and torch's 0 at the kink p = t",
        lambda: [
            Case((), _kinked((3, 4)), _kinked((3, 4))[::-1].copy(), note="p == t on purpose"),
            Case((), _rng(29).standard_normal((2, 3)), _rng(30).standard_normal((2, 3))),
        ],
        losses.L1Loss,
        is_loss=True,
    ),
    "huber": Exercise(
        "HuberLoss",
        "the error near the target, clipped to +-delta far from it",
        lambda: [
            Case((), _rng(31).standard_normal((3, 4)) * 2, np.zeros((3, 4))),
            Case((), _rng(32).standard_normal((2, 5)), np.zeros((2, 5)), kwargs={"delta": 0.5}),
        ],
        losses.HuberLoss,
        is_loss=True,
    ),
    "dropout": Exercise(
        "Dropout",
        "inverted dropout in training: the forward's mask, scaled",
        lambda: [
            Case((0.5,), _rng(11).standard_normal((4, 5))),
            Case((0.2,), _rng(12).standard_normal((3, 3))),
        ],
        layers.Dropout,
    ),
    "batchnorm1d": Exercise(
        "BatchNorm1d",
        "batch normalisation in training: the three terms of dJ/dx",
        lambda: [
            Case((3,), _rng(13).standard_normal((5, 3)) * 2 + 1),
            Case((4,), _rng(14).standard_normal((2, 4)), note="a batch of two"),
        ],
        lambda n: layers.BatchNorm1d(n, dtype=np.float64),
    ),
    "layernorm": Exercise(
        "LayerNorm",
        "layer normalisation over each row: batch normalisation's terms, per row",
        lambda: [
            Case((3,), _rng(33).standard_normal((5, 3)) * 2 + 1),
            Case((6,), _rng(34).standard_normal((2, 6)), note="rows longer than the batch"),
        ],
        lambda n: layers.LayerNorm(n, dtype=np.float64),
    ),
    "batchnorm2d": Exercise(
        "BatchNorm2d",
        "batch normalisation of images, per channel over N, H and W",
        lambda: [
            Case((2,), _rng(35).standard_normal((3, 2, 2, 3)) * 2 + 1),
            Case((1,), _rng(36).standard_normal((1, 1, 3, 3)), note="one image"),
        ],
        lambda n: layers.BatchNorm2d(n, dtype=np.float64),
    ),
    "conv2d": Exercise(
        "Conv2d",
        "a 2-D convolution (stride 1, no padding): dJ/dW, dJ/db, dJ/dx",
        lambda: [
            Case((2, 3, 2), _rng(15).standard_normal((2, 2, 4, 5))),
            Case((1, 1, 3), _rng(16).standard_normal((1, 1, 3, 3)), note="one window"),
        ],
        lambda c, o, k: layers.Conv2d(c, o, k, dtype=np.float64),
    ),
    "maxpool2d": Exercise(
        "MaxPool2d",
        "2x2 max pooling: the gradient to the first maximum",
        lambda: [
            Case((2,), _kinked((1, 2, 4, 4)), note="ties on purpose"),
            Case((2,), _rng(17).standard_normal((2, 1, 2, 6))),
        ],
        layers.MaxPool2d,
    ),
    "avgpool2d": Exercise(
        "AvgPool2d",
        "2x2 average pooling: a quarter of the gradient to each input",
        lambda: [
            Case((2,), _rng(37).standard_normal((1, 2, 4, 4))),
            Case((2,), _rng(38).standard_normal((2, 1, 2, 6))),
        ],
        layers.AvgPool2d,
    ),
    "flatten": Exercise(
        "Flatten",
        "(N, C, H, W) to (N, C * H * W): the gradient takes the input's shape back",
        lambda: [
            Case((), _rng(39).standard_normal((2, 3, 2, 2))),
            Case((), _rng(40).standard_normal((1, 4, 1, 3)), note="one image"),
        ],
        layers.Flatten,
    ),
    "embedding": Exercise(
        "Embedding",
        "y = W[x]: dJ/dW adds every read's gradient, a repeated index's too",
        lambda: [
            Case((5, 3), np.array([[1, 3, 1], [4, 1, 0]]), note="index 1 read three times"),
            Case((4, 2), np.array([0, 2, 2, 3, 2]), kwargs={"padding_idx": 2}, note="padding"),
            Case((6, 1), np.array([5]), note="one index"),
        ],
        lambda n, d, **kwargs: layers.Embedding(n, d, dtype=np.float64, **kwargs),
    ),
    "rnn_cell": Exercise(
        "RNNCell",
        "one time step, h' = tanh(x W_ih^T + h W_hh^T + b): dJ/dW, dJ/dx and dJ/dh",
        lambda: [
            Case((3, 2), (_rng(50).standard_normal((4, 3)), _rng(51).standard_normal((4, 2)))),
            Case(
                (2, 3),
                (_rng(52).standard_normal((1, 2)), _rng(53).standard_normal((1, 3))),
                note="one sample",
            ),
            Case((1, 1), (_rng(54).standard_normal((3, 1)), np.array([[3.0], [-4.0], [0.0]]))),
        ],
        lambda i, h: layers.RNNCell(i, h, dtype=np.float64),
    ),
    "lstm_cell": Exercise(
        "LSTMCell",
        "one step, gates i, f, g, o; c' = f c + i g; h' = o tanh(c')",
        lambda: [
            Case((3, 2), (_rng(55).standard_normal((4, 3)), _states(56, (4, 2), 2))),
            Case(
                (2, 3),
                (_rng(57).standard_normal((1, 2)), _states(58, (1, 3), 2)),
                note="one sample",
            ),
            Case((1, 1), (_rng(59).standard_normal((3, 1)), _states(60, (3, 1), 2))),
        ],
        lambda i, h: layers.LSTMCell(i, h, dtype=np.float64),
    ),
    "gru_cell": Exercise(
        "GRUCell",
        "one GRU step, gates r, z, n: h' = (1 - z) n + z h: dJ/dW, dJ/dx and dJ/dh",
        lambda: [
            Case((3, 2), (_rng(61).standard_normal((4, 3)), _rng(62).standard_normal((4, 2)))),
            Case(
                (2, 3),
                (_rng(63).standard_normal((1, 2)), _rng(64).standard_normal((1, 3))),
                note="one sample",
            ),
        ],
        lambda i, h: layers.GRUCell(i, h, dtype=np.float64),
    ),
    **{
        kind: Exercise(
            kind.upper(),
            f"backpropagation through time: the loop around {kind}_step_backward",
            lambda seed=seed: [
                Case((3, 2), _rng(seed).standard_normal((5, 2, 3)), note="5 time steps"),
                Case((2, 3), _rng(seed + 1).standard_normal((1, 1, 2)), note="one time step"),
                Case((1, 2), _rng(seed + 2).standard_normal((7, 3, 1)), note="7 time steps"),
            ],
            lambda i, h, kind=kind: getattr(layers, kind.upper())(i, h, dtype=np.float64),
        )
        for kind, seed in (("rnn", 65), ("lstm", 68), ("gru", 71))
    },
    "attention": Exercise(
        "Attention",
        "softmax(q k^T / sqrt(d)) v: the softmax's full Jacobian, dq, dk and dv",
        lambda: [
            Case((), _several(75, (2, 4, 3), (2, 5, 3), (2, 5, 2)), note="4 queries, 5 keys"),
            Case((True,), _several(76, (2, 4, 3), (2, 4, 3), (2, 4, 3)), note="causal"),
            Case((), _several(77, (1, 1, 2), (1, 3, 2), (1, 3, 1)), note="one query"),
        ],
        lambda causal=False: _Attention(causal),
        inputs=("q", "k", "v"),
    ),
    "multihead_attention": Exercise(
        "MultiheadAttention",
        "the projections and the heads around the attention",
        lambda: [
            _batch_first((4, 2), 78, [(2, 3, 4), (2, 5, 4), (2, 5, 4)]),
            _batch_first((6, 3), 79, [(1, 4, 6)] * 3, "three heads, self-attention's shapes"),
            _batch_first((2, 1), 80, [(3, 2, 2)] * 3, "one head"),
        ],
        lambda e, h, **kwargs: layers.MultiheadAttention(e, h, dtype=np.float64, **kwargs),
        inputs=("query", "key", "value"),
    ),
    "encoder_layer": Exercise(
        "TransformerEncoderLayer",
        "a block of modules: the residual paths' gradients add",
        lambda: [
            Case(
                (4, 2, 6), _rng(81).standard_normal((3, 2, 4)), kwargs=_NO_DROPOUT, note="post-norm"
            ),
            Case((6, 3, 5), _rng(82).standard_normal((4, 1, 6)), kwargs=_PRE_NORM, note="pre-norm"),
        ],
        lambda d, h, f, **kwargs: layers.TransformerEncoderLayer(
            d, h, f, dtype=np.float64, **kwargs
        ),
    ),
    "decoder_layer": Exercise(
        "TransformerDecoderLayer",
        "self-, cross-attention, feed-forward: dJ/dmemory",
        lambda: [
            Case((4, 2, 6), _several(83, (3, 2, 4), (5, 2, 4)), kwargs=_NO_DROPOUT),
            Case((6, 3, 5), _several(84, (2, 1, 6), (4, 1, 6)), kwargs=_NO_DROPOUT, note="one"),
        ],
        lambda d, h, f, **kwargs: layers.TransformerDecoderLayer(
            d, h, f, dtype=np.float64, **kwargs
        ),
        inputs=("x", "memory"),
    ),
    "twice": Exercise(
        "Twice",
        "f(f(x)), one Linear used twice: the weight's gradient sums both uses",
        lambda: [
            Case((3,), _rng(41).standard_normal((4, 3))),
            Case((2,), _rng(42).standard_normal((1, 2)), note="one sample"),
        ],
        lambda n: _Twice(n),
    ),
}


class _Twice(Module):
    """The reference of the "twice" exercise: one Linear used twice, backward last use first."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.f = layers.Linear(features, features, dtype=np.float64)

    def forward(self, x):
        return self.f(self.f(x))

    def backward(self, grad_output):
        return self.f.backward(self.f.backward(grad_output))


class _Attention(Module):
    """The reference of the "attention" exercise: handprop's scaled dot-product attention of
    (q, k, v), causal or not."""

    def __init__(self, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal

    def forward(self, q, k, v):
        mask = None
        if self.causal:
            mask = np.triu(np.full((q.shape[-2], k.shape[-2]), -np.inf), k=1)
        out, _, self.attention = scaled_dot_product_attention(q, k, v, mask)
        return out

    def backward(self, grad_output):
        return self._attention_backward(grad_output, None, self.attention)

    def _attention_backward(self, d_out, d_weights, cache):
        return scaled_dot_product_attention_backward(d_out, d_weights, cache)


def start(name: str, folder: str | Path = ".") -> Path:
    """Write exercise ``name``'s starting file ``NAME.py`` into ``folder``; an existing file
    (or a link of that name, even one pointing nowhere) is never overwritten or written through.
    """
    _exercise(name)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file, not a folder: start the exercise elsewhere")
    path = folder / f"{name}.py"
    if path.exists() or path.is_symlink():
        raise FileExistsError(f"{path} exists already: start elsewhere, or check it")
    folder.mkdir(parents=True, exist_ok=True)
    text = (TEMPLATES / f"{name}.py").read_text(encoding="utf-8")
    with open(path, "x", encoding="utf-8") as f:  # "x": fails rather than follow a link
        f.write(text)
    return path


class ExerciseFileError(ValueError):
    """The learner's file could not be loaded: what went wrong, in one short message."""


def load_class(name: str, path: str | Path) -> type:
    """The class named like exercise ``name``'s (``Linear``, ...) from the file ``path``.

    A file that fails to import (a syntax error, an exception, ``sys.exit()`` at its top
    level) raises ``ExerciseFileError`` saying so in a line or two, with the line number."""
    exercise = _exercise(name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    spec = importlib.util.spec_from_file_location(f"_handprop_exercise_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        sys.modules.pop(spec.name, None)
        raise ExerciseFileError(
            f"{path} could not be imported: {describe_error(error, path)}"
        ) from None
    found = getattr(module, exercise.class_name, None)
    if not isinstance(found, type):
        raise ExerciseFileError(f"{path} has no class {exercise.class_name}")
    return found


def describe_error(error: BaseException, path: str | Path | None) -> str:
    """``your code raised ZeroDivisionError: division by zero (relu.py, line 17, in
    backward)``: the error and the last place in the learner's file ``path`` it came through."""
    if isinstance(error, SystemExit):
        text = f"your code called sys.exit({error.code!r}), which a graded file must not do"
    elif isinstance(error, _TimeLimitExceeded):
        return str(error)
    else:
        text = f"your code raised {type(error).__name__}: {error}"
    where = None
    if isinstance(error, SyntaxError) and error.lineno is not None:
        where = (Path(error.filename or path or "").name, error.lineno, None)
    elif path is not None:
        for frame in traceback.extract_tb(error.__traceback__):
            if Path(frame.filename) == Path(path):
                where = (Path(frame.filename).name, frame.lineno, frame.name)
    if where is None:
        return text
    file, line, function = where
    return f"{text} ({file}, line {line}" + (f", in {function})" if function else ")")


#: How long the learner's code may run on one case; past that it is stopped and the case
#: fails (an endless loop in a backward must not hang the grader).
TIME_LIMIT = 10.0


class _TimeLimitExceeded(BaseException):
    """The learner's code ran past TIME_LIMIT. (A BaseException, not an Exception, so that an
    ``except Exception`` in the learner's code cannot swallow it.)"""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise _TimeLimitExceeded in this thread after ``seconds`` (where the platform has
    SIGALRM and this is the main thread; elsewhere no limit)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def stop(signum, frame):
        raise _TimeLimitExceeded(
            f"your code ran longer than {seconds:g} s, the time limit of a case "
            "(an endless loop?), and was stopped"
        )

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class CaseResult:
    """One case's outcome: the report, or the error the learner's code raised."""

    case: Case
    report: ModuleReport | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.report is not None and self.report.passed


def grade(name: str, cls: type) -> list[CaseResult]:
    """Grade class ``cls`` on every case of exercise ``name``. Whatever the learner's code
    does (raises, calls ``sys.exit``, loops past ``TIME_LIMIT``) fails that case, with the
    error and its line in the learner's file; it never ends the grading or passes a case."""
    exercise = _exercise(name)
    source = getattr(sys.modules.get(cls.__module__), "__file__", None)
    results = []
    for number, case in enumerate(exercise.cases()):
        try:
            with _time_limit(TIME_LIMIT):
                report = _grade_case(exercise, name, cls, case, number)
        except (Exception, SystemExit, _TimeLimitExceeded) as error:  # the learner's code
            results.append(CaseResult(case, None, describe_error(error, source)))
            continue
        results.append(CaseResult(case, report))
    return results


def _grade_case(exercise: Exercise, name: str, cls: type, case: Case, number: int):
    reference = exercise.reference(*case.args, **case.kwargs)
    mine = cls(*case.args, **case.kwargs)
    _same_parameters(mine, reference, seed=number)
    if exercise.is_loss:
        mine, reference = _AsModule(mine, case.target), _AsModule(reference, case.target)
    if name == "dropout":  # the reference drops what the learner's forward drops
        probe = copy.deepcopy(mine)
        probe(case.x.copy())
        reference._fixed_mask = np.array(probe.mask)
    return check_module(mine, case.x, reference=reference, rng=number)


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"no exercise {name!r}; there are: {', '.join(sorted(EXERCISES))}")
    return EXERCISES[name]


def _same_parameters(mine: Any, reference: Any, seed: int) -> None:
    """Draw the reference's parameters at random (a weight of ones would hide mistakes) and
    give the learner's module the same values, by name."""
    if not isinstance(reference, Module):
        return
    rng = _rng(100 + seed)
    theirs = dict(reference.named_parameters())
    for p in theirs.values():
        p.data[...] = rng.standard_normal(p.shape)
    if not isinstance(mine, Module):
        return
    for name, p in mine.named_parameters():
        if name in theirs:
            p.data = np.array(theirs[name].data, dtype=np.float64)


class _AsModule(Module):
    """A loss seen as a module of its input, for a fixed target: y = loss(x, target).

    A loss's ``kinks_at`` are values of ``x - target`` (L1Loss: 0, where x equals the
    target), so ``kink_origin`` tells check_module to measure them from the target."""

    def __init__(self, loss: Any, target: Any) -> None:
        super().__init__()
        self.loss, self.target = loss, np.array(target)  # its own copy: a loss may cache it
        self.kinks_at = tuple(getattr(loss, "kinks_at", ()))
        if self.kinks_at:  # (an integer target holds class indices: no kinks there)
            self.kink_origin = np.asarray(target, dtype=np.float64)

    def forward(self, x):
        return np.asarray(self.loss(x, self.target), dtype=np.float64)

    def backward(self, grad_output):
        return np.asarray(self.loss.backward(float(grad_output)), dtype=np.float64)

    def __repr__(self) -> str:
        return repr(self.loss)


def _input_shapes(x: Any, names: tuple[str, ...] = ("x", "h", "c")) -> str:
    """``x(4, 3)``, ``x(4, 3), h(4, 2)`` or ``x(4, 3), (h(4, 2), c(4, 2))``: a case's inputs
    (``names``: attention's are ``q``, ``k``, ``v``)."""
    if not isinstance(x, tuple):
        return f"{names[0]}{tuple(np.shape(x))}"
    names = iter(names)

    def shown(value: Any) -> str:
        if isinstance(value, tuple):
            return "(" + ", ".join(shown(v) for v in value) + ")"
        return f"{next(names)}{tuple(np.shape(value))}"

    return ", ".join(shown(v) for v in x)


def report_text(name: str, results: list[CaseResult]) -> str:
    """What ``handprop exercise check`` prints: each case, its table, the hints, a verdict."""
    exercise = _exercise(name)
    lines = [f"exercise {name}: {exercise.class_name}, {exercise.summary}", ""]
    for number, result in enumerate(results, start=1):
        case = result.case
        shape = _input_shapes(case.x, exercise.inputs)
        arguments = case.call(exercise.class_name)
        status = "passed" if result.passed else "FAILED"
        note = f"; {case.note}" if case.note else ""
        lines.append(f"case {number}: {arguments} on {shape}{note}: {status}")
        if result.error is not None:
            lines.append(f"  {result.error}")
        elif not result.passed:
            lines += ["  " + line for line in str(result.report).splitlines()[1:]]
    passed = sum(r.passed for r in results)
    verdict = "all cases pass" if passed == len(results) else "not yet"
    lines += ["", f"{passed} of {len(results)} cases pass: {verdict}"]
    return "\n".join(lines)
