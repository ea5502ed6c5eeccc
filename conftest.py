"""Test-session settings, inherited by the notebook kernels that nbval and papermill start."""

import os

# Headless runs: plain-text progress bars instead of ipywidgets (no front end to talk to).
os.environ.setdefault("LABKIT_PROGRESS", "text")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LABKIT_PROFILE", "smoke")
