"""The teaching tools, apart from the core (layers, losses, module, optim). The names
``Z1``, ``A1``, ... of a network's values are in ``handprop.naming``, which the trust tools
(gradcheck, interop) use too: they never import these.

- ``trace``: one forward and backward pass with every value kept under the worked example's
  names (``handprop.trace(...)`` and ``handprop.Trace`` are the same objects);
- ``derivation``: the LaTeX derivation of a trace (``Trace.to_markdown``);
- ``graph``: the computational graph as SVG (``Trace.to_svg``);
- ``walkthrough``: the worked example step by step (``handprop walkthrough``);
- ``diagnose``: ``check_module``, a module's backward checked with the likely mistake named
  (``handprop.check_module``);
- ``stepper``: the step-through page of a trace (``Trace.to_html``);
- ``stats``: each layer's statistics (``Trace.stats``).
"""
