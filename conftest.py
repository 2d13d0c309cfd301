"""Root pytest configuration: handprop.interop's docstring examples need torch.

Where torch is missing they are not collected (the torch-free tests still run); CI installs
torch, and there any skip fails the run (tests/conftest.py).
"""

collect_ignore = []
try:
    import torch  # noqa: F401
except ImportError:
    collect_ignore.append("src/handprop/interop.py")
