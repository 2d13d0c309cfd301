"""Exercise: the backward of an embedding, y = W[x]: each index replaced by its row of W.

Shapes: x integer indices (*), W (num_embeddings, embedding_dim), y (*, embedding_dim).
Check your work with:  handprop exercise check embedding embedding.py
"""

import numpy as np

from handprop import Module, Parameter


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        super().__init__()
        rng = np.random.default_rng(0)
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)))
        self.padding_idx = padding_idx  # a row that gets no gradient (None: no such row)

    def forward(self, x):
        self.x = x  # the indices, kept for the backward
        return self.weight.data[x]

    def backward(self, grad_output):
        g = grad_output  # dJ/dy, shape (*x.shape, embedding_dim)
        # Step 1: dJ/dW starts as zeros of W's shape. Output row p is a copy of row x[p] of
        #         W, so its gradient goes to that row; a row read several times (a repeated
        #         index) gets the sum of their gradients. dW[x] += ... keeps only one of them:
        #         use np.add.at(dW, indices, rows) on x and g flattened to (-1,) and (-1, dim).
        # Step 2: the padding_idx row, if there is one, gets no gradient: set it to zeros.
        # Step 3: store it with self.weight.accumulate_grad(...).
        # Step 4: return None: the indices are whole numbers, they have no gradient.
        raise NotImplementedError("write the backward: follow the steps above")
