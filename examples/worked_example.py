"""The worked example of "Neural Networks - Backpropagation" (pooya.io), walked through by
handprop.

Runs with NumPy alone:  python examples/worked_example.py [--svg graph.svg] [--dtype float64]

The same as the console command ``handprop walkthrough``: the network, its parameters, the
forward pass, the cost, then backpropagation step by step with handprop's value, the value
the document prints and (if torch is installed) torch's, and why the document differs where
it does. The code that prints it is src/handprop/explain/walkthrough.py; the backprop itself
is in src/handprop/layers/ (linear.py, activation.py) and losses.py.
"""

import sys

from handprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["walkthrough", *sys.argv[1:]]))
