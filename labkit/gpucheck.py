"""``labkit gpu-check`` (``scripts/gpu_check.sh``): every lab's ``full`` profile for a few hundred steps on a GPU.

On a CUDA machine it writes the real dataset layouts (:mod:`labkit.layouts`, from the bundled photos,
sized for the full profiles' patches) into a temporary folder, runs each lab's notebook with
``--profile full -p max_steps=N`` through papermill (the labs' own code: full-size models, bf16
autocast where the lab trains with AMP), and records per lab, in one JSON:

- ``status`` ("ok" / "failed" with the failing cell), ``seconds`` (wall time of the notebook);
- ``steps_per_s``: optimizer steps / training seconds, summed over every training run of the lab
  (from its :class:`labkit.train.History` rows: ``step`` and ``seconds`` per epoch, which include the
  epoch's validation and checkpoint writes), and ``train_steps_per_s`` over the ``train_seconds`` of the
  training batches alone, under the settings in ``settings`` (deterministic kernels unless
  ``LABKIT_DETERMINISTIC=0``, the notebooks' ``num_workers``);
- ``peak_mem_gb``: ``torch.cuda.max_memory_allocated()`` of the notebook's kernel, in GiB;
- ``first_losses``: the first ``train_loss`` values of each training run; ``nan``: any non-finite one.

Mechanism: the notebook is run from a temporary copy with one extra last cell that finds the
``History`` objects in the kernel (also inside dicts such as ``histories``) and writes the numbers
above to ``$LABKIT_GPU_STATS``; the course notebooks themselves are unchanged.

Each check runs into a new folder ``<out>/run-<UTC time>/`` (the notebooks checkpoint with ``resume=True``:
a folder kept from an earlier check would hand back its finished runs instead of training), and writes
``gpu_check.json`` there and in ``<out>``. A History that several names point at counts once.

Exit status: 0 when every lab ran with finite losses (or, without CUDA, after a skip notice; with
``--require-cuda``, 1 there); 1 if any lab failed or produced a NaN / inf loss.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from labkit import env, parameters, report, runner

SKIP_NOTICE = "gpu-check needs CUDA (torch.cuda.is_available() is False here): skipped, nothing was run."

#: The cell appended to each notebook copy (runs in the notebook's kernel).
STATS_CELL = '''
import json, math, os, torch
from labkit.train import History
def _histories(ns):
    seen = set()   # one training, however many names point at its History (e.g. a leftover `h`)
    for k, v in list(ns.items()):
        if k.startswith("_"):
            continue
        found = [(k, v)] if isinstance(v, History) else (
            [(f"{k}[{k2}]", v2) for k2, v2 in v.items() if isinstance(v2, History)] if isinstance(v, dict) else [])
        for name, h in found:
            if id(h) not in seen:
                seen.add(id(h))
                yield name, h
_runs = {}
for _name, _h in dict(_histories(globals())).items():
    _loss = [r.get("train_loss") for r in _h.epochs]
    _runs[_name] = {"steps": int(_h.epochs[-1].get("step") or 0) if _h.epochs else 0,
                    "seconds": float(sum(r.get("seconds") or 0.0 for r in _h.epochs)),
                    "train_seconds": float(sum(r.get("train_seconds") or 0.0 for r in _h.epochs)),
                    "first_losses": _loss[:3],
                    "nan": any(v is None or not math.isfinite(v) for v in _loss)}
_cuda = torch.cuda.is_available()
with open(os.environ["LABKIT_GPU_STATS"], "w") as _f:
    json.dump({"runs": _runs, "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if _cuda else None,
               "device": torch.cuda.get_device_name() if _cuda else "cpu"}, _f)
'''


def make_data(root: Path) -> dict[str, dict[str, Any]]:
    """Write each lab's dataset layout under ``root``; return ``{lab: parameters}`` for ``labkit run``.

    Sizes fit the full profiles: DIV2K HR 384 x 480 (192-px crops), LG flare 384 x 512 (256-px
    windows; no bundled photo holds 512 x 640), SIDD arrays 256 px, GoPro 320 x 384 (256-px crops), DACON inpainting 256 px.
    """
    # The models and the layout generators (the data package) load only when a check runs: the CLI
    # imports this module for its arguments, and `labkit --help` should not pay for them.
    from labkit import layouts, models, weights

    div2k = layouts.make_div2k(root / "DIV2K", n_train=8, n_valid=2, size=(384, 480))
    dacon = layouts.make_dacon_sr(root / "dacon_sr", n_train=20, n_test=2, lr_size=128)
    rrdb = root / "RRDB_PSNR_x4_random.pth"   # random weights in the ESRGAN layout: no download
    torch.save(weights.rrdb_from_basicsr(models.build("rrdbnet_x4").state_dict(), "esrgan"), rrdb)
    lg = layouts.make_lg_flare(root / "lg_flare", n_train=10, n_test=1, size=(384, 512))  # the photos' largest crop
    sidd = layouts.make_sidd_npy(root / "SIDD", n=12)
    gopro = layouts.make_gopro(root / "gopro", size=(320, 384))
    inpaint = layouts.make_dacon_inpainting(root / "inpainting", n_train=40, n_test=2, size=(256, 256))
    return {
        "01": {"data_root": str(div2k / "DIV2K_train_HR")},
        "02": {"data_root": str(div2k), "max_images": 2},
        "03": {"data_root": str(dacon), "pretrained": str(rrdb)},
        "04": {"data_root": str(lg), "process_num": 4},
        "05": {"data_root": str(sidd), "gopro_root": str(gopro), "max_images": 4},
        "06": {"data_root": str(inpaint)},
    }


def fresh_run_folder(out_root: Path) -> Path:
    """A new, empty ``<out_root>/run-<UTC time>[-N]/`` for one check (created)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        folder = out_root / (f"run-{stamp}" + (f"-{n}" if n else ""))
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder under {out_root}")


def check_lab(nb: Path, params: dict[str, Any], out_root: Path, work: Path) -> dict[str, Any]:
    """Run one notebook (a copy with :data:`STATS_CELL` appended); its record for the JSON."""
    source = json.loads(nb.read_text(encoding="utf-8"))
    source["cells"].append({"cell_type": "code", "execution_count": None, "id": "gpucheck-stats",
                            "metadata": {}, "outputs": [], "source": STATS_CELL.strip().splitlines(True)})
    copy = work / "notebooks" / nb.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(json.dumps(source, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    stats_path = work / f"{nb.stem}.stats.json"
    os.environ["LABKIT_GPU_STATS"] = str(stats_path)
    result = runner.run_notebook(copy, out_root, "full", params, progress=False)
    record: dict[str, Any] = {"status": result.status, "seconds": round(result.seconds, 1), "params": params}
    if result.status != "ok":
        record["error"] = result.error
        return record
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    runs = stats["runs"]
    steps = sum(r["steps"] for r in runs.values())
    secs = sum(r["seconds"] for r in runs.values())
    train_secs = sum(r.get("train_seconds") or 0.0 for r in runs.values())
    record.update(device=stats["device"], peak_mem_gb=round(stats["peak_mem_gb"], 2),
                  steps=steps, steps_per_s=round(steps / secs, 2) if secs else None,
                  train_steps_per_s=round(steps / train_secs, 2) if train_secs else None,
                  first_losses={k: r["first_losses"] for k, r in runs.items()},
                  nan=any(r["nan"] for r in runs.values()))
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """``labkit gpu-check [--steps N] [--labs 02 05] [--out DIR]``; see the module docstring."""
    parser = argparse.ArgumentParser(prog="labkit gpu-check", description=__doc__.splitlines()[0])
    add_gpu_check_arguments(parser)
    return run_gpu_check(parser.parse_args(argv))


def add_gpu_check_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``gpu-check`` options (``--steps``, ``--labs``, ``--out``), on this module's parser and the CLI's."""
    parser.add_argument("--steps", type=int, default=200, help="max_steps per training run (default 200)")
    parser.add_argument("--labs", nargs="*", default=["01", "02", "03", "04", "05", "06"], help="labs to run")
    parser.add_argument("--out", help="output folder (default runs/gpu_check/); each check runs into a new "
                                      "run-<time>/ there; the JSON is gpu_check.json in both")
    parser.add_argument("--require-cuda", action="store_true",
                        help="exit 1 (not 0) when torch sees no CUDA device (for CI-like use on a GPU machine)")


def run_gpu_check(args: argparse.Namespace) -> int:
    """Run the check (``args``: ``steps``, ``labs``, ``out``); the exit status (see the module docstring)."""
    if not torch.cuda.is_available():
        print(SKIP_NOTICE)
        return 1 if getattr(args, "require_cuda", False) else 0
    out_root = Path(args.out) if args.out else env.runs_dir() / "gpu_check"
    run_root = fresh_run_folder(out_root)
    notebooks = runner.select_notebooks(args.labs, runner.discover_notebooks())
    results: dict[str, Any] = {"steps": args.steps, "labs": {}, "settings": {
        "deterministic": os.environ.get("LABKIT_DETERMINISTIC", "1") not in ("0", ""),
        "num_workers": "the notebooks' (0: data loading in the training process)",
        "steps_per_s": "optimizer steps / epoch seconds (validation and checkpoint writes included)",
        "train_steps_per_s": "optimizer steps / seconds of the training batches alone (no validation, no "
                             "end-of-epoch checkpoint)"}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit_gpu_check_") as tmp:
        params = make_data(Path(tmp) / "data")
        for nb in notebooks:
            lab = nb.stem[:2]
            p = {**params[lab], "max_steps": args.steps}
            p = parameters.check_run_parameters([nb], {k: v for k, v in p.items()   # 01 trains nothing: no max_steps
                                                       if k in parameters.declared_parameters(nb)})[nb]
            rec = check_lab(nb, p, run_root, Path(tmp))
            results["labs"][nb.stem] = rec
            print(f"{nb.stem}: {rec['status']} in {rec['seconds']} s, {rec.get('steps_per_s')} steps/s, "
                  f"peak {rec.get('peak_mem_gb')} GiB, NaN: {rec.get('nan')}" + (f"\n  {rec['error']}" if "error" in rec else ""),
                  flush=True)
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["run_folder"] = str(run_root)
    bad = [k for k, r in results["labs"].items() if r["status"] != "ok" or r.get("nan")]
    results["ok"] = not bad
    report.write_json_atomic(run_root / "gpu_check.json", results)
    path = report.write_json_atomic(out_root / "gpu_check.json", results)
    print(f"written: {path} ({results['seconds']} s)" + (f"; FAILED: {bad}" if bad else "; all labs ok"))
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
