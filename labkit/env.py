"""Where the code runs: device choice, seeding, mixed precision, Colab detection and paths.

Everything a notebook's setup cell needs, so that the same notebook runs on a laptop CPU, on
Colab and on an A100 without edits. Paths come from environment variables so that papermill
batch jobs and CI can redirect them:

- ``LABKIT_PROFILE``: the profile a notebook uses when papermill does not set one (``smoke``).
- ``LABKIT_DATA``: where real datasets live (default ``<repo>/data``).
- ``LABKIT_RUNS``: where runs are written (default ``<repo>/runs``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import tqdm
import tqdm.auto

import labkit

PROFILES = ("smoke", "full")

#: The folder holding the ``labkit`` package: the repository root in a checkout, ``site-packages`` when
#: labkit is installed as a package (``pip install git+...``, the notebooks' Colab cell). Use
#: :func:`checkout_root` / :func:`home_dir` to tell the two apart.
REPO_ROOT = Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """The repository checkout labkit runs from, or None when it is installed as a package.

    A checkout has ``pyproject.toml`` and ``notebooks/`` beside the ``labkit`` package (an editable install
    or ``PYTHONPATH``); a wheel installed into ``site-packages`` has neither.
    """
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "notebooks").is_dir() else None


def home_dir() -> Path:
    """Where ``runs/``, ``data/`` and ``notebooks/`` are looked for by default: the checkout's root, or, when
    labkit is installed as a package, the current working folder (``/content`` on Colab), never the
    installed package's folder."""
    return checkout_root() or Path.cwd()


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return the torch device to run on.

    Args:
        device: ``None`` or ``"auto"`` picks CUDA if available, else Apple's MPS, else the CPU;
            any other value (``"cpu"``, ``"cuda:1"``, a ``torch.device``) is used as given.

    Raises:
        ValueError: a CUDA/MPS device was asked for but is not available on this machine.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available here; use 'auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r} was asked for but MPS is not available here; use 'auto' or 'cpu'")
    return dev


#: The CPU thread count every run uses unless ``LABKIT_NUM_THREADS`` says otherwise (capped by the
#: cores this process may use). One fixed number, set in one place: a float reduction split over a
#: different number of threads adds in another order, so the same seed would print other numbers.
DEFAULT_NUM_THREADS = 4


#: ``labkit run`` and the test session start notebook kernels with ``OMP_WAIT_POLICY=PASSIVE`` (unless
#: set): OpenMP threads then sleep while they wait instead of spinning. On a busy machine (other jobs,
#: helpers, CI neighbours) spinning threads steal each other's cores and one training step was measured
#: up to 10x slower; on an idle one the difference is small. It changes no result. (It must be set
#: before torch starts, so it lives in the environment of the process that starts the kernel.)
PASSIVE_OPENMP = "OMP_WAIT_POLICY=PASSIVE"


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def num_threads() -> int:
    """The intra-op thread count for torch: ``$LABKIT_NUM_THREADS``, else ``min(4, available cores)``.

    Raises:
        ValueError: ``LABKIT_NUM_THREADS`` is not a positive integer.
    """
    raw = os.environ.get("LABKIT_NUM_THREADS", "").strip()
    if not raw:
        return max(1, min(DEFAULT_NUM_THREADS, available_cores()))
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"LABKIT_NUM_THREADS={raw!r} must be a positive integer")
    return int(raw)


def deterministic_default() -> bool:
    """Whether :func:`seed_everything` asks for deterministic kernels: ``$LABKIT_DETERMINISTIC``
    (``0``/``false``/``no`` turn it off, e.g. for speed on a GPU), else True."""
    return os.environ.get("LABKIT_DETERMINISTIC", "1").strip().lower() not in ("0", "false", "no", "off")


def seed_everything(seed: int, *, deterministic: bool | None = None) -> None:
    """Make a run repeatable: seed every RNG, fix the thread count, pick deterministic kernels.

    The one place where a run's determinism is set (every notebook's derived cell and
    ``labkit.train.fit(seed=...)`` call it):

    - seeds Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device). The
      data pipeline draws from torch's RNG (random crops, masks, noise, ``PairedAugment()`` without
      its own seed), so it follows this seed, DataLoader workers included (each worker's torch seed
      derives from the main one; :func:`seed_worker` seeds NumPy and ``random`` there too), and
      ``fit``'s checkpoints, which save these RNG states, resume bit-exactly;
    - sets torch's CPU thread count to :func:`num_threads` (``$LABKIT_NUM_THREADS``, else
      ``min(4, cores)``);
    - with ``deterministic`` (default :func:`deterministic_default`, True unless
      ``LABKIT_DETERMINISTIC=0``): ``torch.use_deterministic_algorithms(True, warn_only=True)``,
      cuDNN deterministic and not benchmarking, and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (needed for
      deterministic cuBLAS; effective when set before the first CUDA call). On CPU this costs
      nothing measurable; on a GPU some kernels are slower.

    Same seed, same machine, same library versions -> the same printed numbers (bit-identical on
    CPU). Another machine may differ in the last bits, so lessons are checked over several seeds.

    Args:
        seed: the seed (the write-ups use 42).
        deterministic: override :func:`deterministic_default`.

    Raises:
        ValueError: ``LABKIT_NUM_THREADS`` is not a positive integer.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    n = num_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if deterministic is None:
        deterministic = deterministic_default()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: seed NumPy and ``random`` in a worker from the
    torch seed the DataLoader gave it (``torch.initial_seed()``, itself derived from the main RNG),
    as PyTorch's reproducibility notes recommend."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 on CUDA cards with native bf16 (compute capability 8.0 and up:
    A100, H100, RTX 30xx/40xx), fp16 (with a GradScaler in training) on older ones (T4, V100); None on CPU/MPS.

    ``torch.cuda.is_bf16_supported()`` alone answers True below 8.0 too (its default counts emulation), where
    cuDNN has no bf16 convolutions: hence ``including_emulation=False``.
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op on CPU and MPS.

    fp16 needs a ``torch.amp.GradScaler`` in training; bf16 does not (``labkit.train.fit`` handles it).
    """
    dtype = amp_dtype(device) if enabled else None
    if dtype is None:
        yield
        return
    with torch.autocast(device_type="cuda", dtype=dtype):
        yield


def is_colab() -> bool:
    """True inside Google Colab (its ``google.colab`` module is importable)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def profile_from_env(default: str = "smoke") -> str:
    """The profile named by ``LABKIT_PROFILE`` (``smoke`` or ``full``), else ``default``.

    Raises:
        ValueError: the variable names an unknown profile.
    """
    profile = os.environ.get("LABKIT_PROFILE", default).strip().lower()
    if profile not in PROFILES:
        raise ValueError(f"LABKIT_PROFILE={profile!r} is not a known profile; use one of {PROFILES}")
    return profile


def data_dir() -> Path:
    """Root of the real datasets: ``$LABKIT_DATA``, else ``data/`` under :func:`home_dir` (the checkout, or
    the working folder when labkit is installed as a package)."""
    return Path(os.environ.get("LABKIT_DATA", home_dir() / "data")).expanduser()


def runs_dir() -> Path:
    """Root of the run folders: ``$LABKIT_RUNS``, else ``runs/`` under :func:`home_dir` (the checkout, or the
    working folder when labkit is installed as a package: ``/content/runs`` on Colab)."""
    return Path(os.environ.get("LABKIT_RUNS", home_dir() / "runs")).expanduser()


def notebooks_dir() -> Path:
    """The course notebooks' folder by default: ``notebooks/`` under :func:`home_dir`."""
    return home_dir() / "notebooks"


def resolve_out_dir(out_dir: str | os.PathLike | None, notebook: str, profile: str) -> Path:
    """The folder a notebook writes metrics.json and figures to, created if needed.

    ``out_dir`` as given (papermill's ``labkit run`` passes one), else ``runs/<profile>/<notebook>``.
    """
    path = Path(out_dir) if out_dir else runs_dir() / profile / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


def describe(device: torch.device | None = None) -> str:
    """One line of versions and hardware for a notebook's setup cell."""
    dev = device or pick_device()
    gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    return (
        f"labkit {labkit.__version__} | python {platform.python_version()} | torch {torch.__version__} | "
        f"numpy {np.__version__} | device {dev}{gpu} | threads {torch.get_num_threads()}"
    )


def progress_bar() -> type[tqdm.tqdm]:
    """tqdm's class for this session: notebook widgets (``tqdm.auto``) unless ``LABKIT_PROGRESS=text``.

    Headless notebook runs (papermill in ``labkit run``, nbval in CI) have no widget front end: a
    widget bar there is dead weight in the saved notebook and can wait on a front end that never
    answers, so ``labkit run`` and the test setup set ``LABKIT_PROGRESS=text`` and get plain text bars.
    Usage: ``for batch in progress_bar()(loader, desc="train"): ...``.
    """
    if os.environ.get("LABKIT_PROGRESS", "auto").lower() == "text":
        return tqdm.tqdm
    return tqdm.auto.tqdm
