"""Random networks against torch autograd (hypothesis): every layer, loss and reduction.

Two properties, each in float32 and float64:

- generic networks (torch's initialisation, Gaussian inputs): the whole network end to end,
  torch running its own forward: each module's output, the cost, dJ/dX, every .grad;
- edge networks (exact zeros, -0.0, ones, large magnitudes, saturated sigmoids, probabilities
  exactly 0 and 1): every module and the loss on handprop's own intermediate values. End to
  end, such values are ill-conditioned for *any* two implementations (a pre-activation that is
  0 in one summation order is 1e-9 in another and flips a ReLU; a probability one unit in the
  last place from 1 changes -log(1 - p) by a large fraction), so the per-step check is the one
  that can be strict here.
"""

import numpy as np
import pytest

pytest.importorskip("torch")

from hypothesis import given
from hypothesis import strategies as st
from parity import check_modules, check_network
from strategies import edge_problems, generic_problems

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


@DTYPES
@given(data=st.data())
def test_generic_networks_match_torch_end_to_end(dtype, data):
    model, loss, X, y = data.draw(generic_problems(dtype))
    check_network(model, loss, X, y)


@DTYPES
@given(data=st.data())
def test_edge_networks_match_torch_module_by_module(dtype, data):
    model, loss, X, y = data.draw(edge_problems(dtype))
    check_modules(model, loss, X, y)


@DTYPES
@given(data=st.data())
def test_generic_networks_match_torch_module_by_module(dtype, data):
    model, loss, X, y = data.draw(generic_problems(dtype))
    check_modules(model, loss, X, y)
