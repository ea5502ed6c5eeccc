"""``python -m labkit.labs NN --profile smoke|full -p key=value [--out DIR] [--no-resume]``: train one lab.

The script ``torchrun`` launches (``torchrun --nproc_per_node=8 -m labkit.labs 02 --profile full ...``);
``labkit train NN`` takes the same arguments (:func:`labkit.labs.add_train_arguments`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from labkit.labs import add_train_arguments, train_from_args


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_train_arguments(argparse.ArgumentParser(prog="python -m labkit.labs",
                                                         description="Train one lab from its profile."))
    args = parser.parse_args(argv)
    try:
        return train_from_args(args)
    except (ValueError, FileNotFoundError) as exc:   # usage errors, as `labkit train` reports them
        parser.error(str(exc))
        return 2  # unreachable: parser.error exits


if __name__ == "__main__":
    sys.exit(main())
