"""The exercises' starting files: ``handprop exercise start NAME`` copies one of these.

Each holds a layer or loss whose forward is written and whose backward is left to write, with
the steps as comments. They are Python files of the package (so that they are installed and
linted with it); their backward raises ``NotImplementedError`` until a learner writes it.
"""
