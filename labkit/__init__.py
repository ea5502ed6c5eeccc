"""labkit: the models, data, training and inference code behind the restoration-lab notebooks.

The notebooks in ``notebooks/`` tell the story; this package holds every routine they call, so a
notebook cell stays short and every piece is unit-tested. See ``DESIGN.md`` (in the course's shared
folder) for the module map.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
