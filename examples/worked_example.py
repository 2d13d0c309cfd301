"""The source document's worked example, computed by handprop: forward, cost, backward.

Runs with NumPy alone:  python examples/worked_example.py

Prints every forward value (Z = Linear output, A = activation output), the per-sample losses
L and the cost J, then every gradient backpropagation produces, from dJ/dA3 back to dJ/dX,
and the parameter gradients torch would put in ``.grad``.
"""

import numpy as np

from handprop import worked_example as we

np.set_printoptions(precision=8, suppress=True)
NAMES = ["Z1", "A1", "Z2", "A2", "Z3", "A3"]  # the outputs of the six modules, in order


def main() -> None:
    model = we.model()  # float32, like torch; we.model(np.float64) for double precision
    X, Y = we.data()
    loss_fn = we.loss_fn()
    print(model, "\n")

    print("Forward")
    h = X
    for name, module in zip(NAMES, model, strict=True):
        h = module(h)
        print(f"{name} =\n{h}")
    cost = loss_fn(h, Y)
    print(f"cost J = mean(L) = {cost:.8f}   (the document: 0.1952)\n")

    print("Backward: dJ/d(output of each module), from the cost back to the input")
    grad = loss_fn.backward()  # dJ/dA3; the document's dL/dA3 is 2x this (it skips the 1/m)
    for name, module in zip(reversed(NAMES), reversed(list(model)), strict=True):
        print(f"dJ/d{name} =\n{grad}")
        grad = module.backward(grad)
    print(f"dJ/dX =\n{grad}\n")

    print("Parameter gradients (torch's .grad)")
    for name, param in model.named_parameters():
        print(f"{name}.grad =\n{param.grad}")
    print(
        "\nNote: Z2[0, 0] is exactly 0, ReLU's kink; handprop (like torch) takes ReLU'(0) = 0,"
        "\nso dJ/dZ2[0, 0] = 0 although dJ/dA2[0, 0] is not."
    )


if __name__ == "__main__":
    main()
