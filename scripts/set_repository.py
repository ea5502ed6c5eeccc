"""Point every Colab badge and notebook install cell at the repository named in ``pyproject.toml``.

The one setting is ``[project.urls] Repository`` (a GitHub URL) and ``[tool.labkit] colab_branch``
in ``pyproject.toml``. A fork changes those two lines and runs::

    python scripts/set_repository.py           # rewrite the notebooks and README.md
    python scripts/set_repository.py --check   # exit 1 and list what disagrees (the tests run this)

What it writes, for ``Repository = "https://github.com/OWNER/NAME"``:

- each notebook's badge (first cell) and each README badge:
  ``https://colab.research.google.com/github/OWNER/NAME/blob/<branch>/notebooks/<file>.ipynb``;
- each notebook's install cell: ``REPOSITORY = "https://github.com/OWNER/NAME"``, installed on
  Colab with ``pip install git+<REPOSITORY>@<branch>``.

Outputs of the notebooks are not touched (the install cell does nothing outside Colab).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/notebooks/"
                   r"(?P<file>[0-9]{2}_[A-Za-z0-9_]+\.ipynb)")
INSTALL_REPO = re.compile(r'^REPOSITORY = "[^"]*"', flags=re.M)
INSTALL_BRANCH = re.compile(r'^BRANCH = "[^"]*"', flags=re.M)


def settings(root: Path = ROOT) -> tuple[str, str]:
    """``(repository URL, branch)`` from ``root/pyproject.toml``.

    Raises:
        ValueError: no ``Repository`` URL, or one that is not ``https://github.com/OWNER/NAME``
            (Colab opens notebooks from GitHub only).
    """
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib

        data = tomllib.loads(text)
        url = data.get("project", {}).get("urls", {}).get("Repository")
        branch = data.get("tool", {}).get("labkit", {}).get("colab_branch", "main")
    except ImportError:  # Python 3.10: the two lines by pattern
        m = re.search(r'^Repository\s*=\s*"([^"]+)"', text, flags=re.M)
        b = re.search(r'^colab_branch\s*=\s*"([^"]+)"', text, flags=re.M)
        url, branch = (m.group(1) if m else None), (b.group(1) if b else "main")
    if not url or not re.fullmatch(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", url.rstrip("/")):
        raise ValueError(f"{root / 'pyproject.toml'}: [project.urls] Repository must be https://github.com/OWNER/NAME "
                         f"(Colab opens notebooks from GitHub), got {url!r}")
    return url.rstrip("/"), branch


def badge_url(repository: str, branch: str, notebook: str) -> str:
    """The Colab URL of ``notebooks/<notebook>`` in ``repository`` at ``branch``."""
    owner_name = repository.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{branch}/notebooks/{notebook}"


def _fix_text(text: str, repository: str, branch: str) -> str:
    text = BADGE.sub(lambda m: badge_url(repository, branch, m.group("file")), text)
    text = INSTALL_REPO.sub(f'REPOSITORY = "{repository}"', text)
    return INSTALL_BRANCH.sub(f'BRANCH = "{branch}"', text)


def apply(root: Path = ROOT, *, check: bool = False) -> list[str]:
    """Rewrite (or, with ``check``, only list) the files whose badges / install cells disagree.

    Returns the relative paths that were (or would be) changed. Raises ValueError when a notebook
    has no badge or no ``REPOSITORY = "..."`` install line (the file is named).
    """
    repository, branch = settings(root)
    changed = []
    for nb_path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        sources = ["".join(c["source"]) for c in nb["cells"]]
        if not any(BADGE.search(s) for s in sources):
            raise ValueError(f"{nb_path}: no Colab badge in any cell")
        if not any(INSTALL_REPO.search(s) for s in sources):
            raise ValueError(f'{nb_path}: no install cell with a REPOSITORY = "..." line')
        fixed = [_fix_text(s, repository, branch) for s in sources]
        if fixed != sources:
            changed.append(str(nb_path.relative_to(root)))
            if not check:
                for cell, src in zip(nb["cells"], fixed):
                    cell["source"] = src.splitlines(keepends=True)
                nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    fixed = _fix_text(text, repository, branch)
    if fixed != text:
        changed.append("README.md")
        if not check:
            readme.write_text(fixed, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file disagrees")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    repository, branch = settings(args.root)
    changed = apply(args.root, check=args.check)
    verb = "disagree with" if args.check else "now point at"
    print(f"{len(changed)} file(s) {verb} {repository} ({branch})" + (": " + ", ".join(changed) if changed else ""))
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
