"""Training: :func:`fit` (supervised pairs) and :func:`fit_gan` (adversarial), on one shared loop.

- :mod:`labkit.train.session`: the run session both trainers use (DDP, loaders, seeding, resume,
  atomic checkpoints with RNG states, best epoch and early stopping, the epoch loop);
- :mod:`labkit.train.supervised`: :func:`fit` and its update (forward, loss, backward, EMA, AMP);
- :mod:`labkit.train.gan`: :class:`GANStep` (one two-player update) and :func:`fit_gan`;
- :mod:`labkit.train.checkpoint`: RNG states, reading ``last.pth``, the run's settings and their check;
- :mod:`labkit.train.batches`: loaders, batch unpacking and validation PSNR;
- :mod:`labkit.train.history`: :class:`History`, what a run records.
"""

from labkit.train.gan import GAN_CHECKPOINT_FORMAT, GANStep, GANTrainingError, fit_gan
from labkit.train.history import History
from labkit.train.session import CheckpointError, SettingsChangedError
from labkit.train.supervised import CHECKPOINT_FORMAT, fit

__all__ = ["CHECKPOINT_FORMAT", "GAN_CHECKPOINT_FORMAT", "CheckpointError", "GANStep", "GANTrainingError",
           "History", "SettingsChangedError", "fit", "fit_gan"]
