"""Test-session settings, inherited by the notebook kernels that nbval and papermill start."""

import os
import tempfile

# Headless runs: plain-text progress bars instead of ipywidgets (no front end to talk to).
os.environ.setdefault("LABKIT_PROGRESS", "text")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LABKIT_PROFILE", "smoke")
# Notebook runs under test write to a scratch folder, never into the user's runs/.
os.environ.setdefault("LABKIT_RUNS", tempfile.mkdtemp(prefix="labkit-test-runs-"))
