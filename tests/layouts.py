"""Moved to :mod:`labkit.layouts` (the GPU check uses the layouts too); kept so that ``import layouts``
in tests not yet switched keeps working. New code: ``from labkit import layouts``."""

from labkit.layouts import *  # noqa: F401,F403
from labkit.layouts import __all__  # noqa: F401
