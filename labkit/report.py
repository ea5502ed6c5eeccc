"""Results bookkeeping: each notebook's ``metrics.json`` and the course-wide ``report.md``.

Every notebook's last cell calls :func:`save_metrics`; ``labkit report`` (and the end of
``labkit run``) calls :func:`write_report`, which collects ``<root>/*/metrics.json`` into one
markdown report: a headline table with a row per lab, then each lab's own tables.

``metrics.json`` schema (plain JSON, floats rounded only when rendered)::

    {"notebook": "02_sr_trials_edsr_srgan_swinir", "profile": "smoke", "title": "...",
     "headline": {"EDSR PSNR-Y (dB)": 27.31, ...},          # a few key -> number/string pairs
     "tables": {"held-out": [{"method": "bicubic", ...}, ...]},   # name -> list of rows
     "notes": ["..."], "created": "2026-11-22T10:00:00"}

Sweeps (``labkit run NB --sweep key=v1,v2``): each run folder ``<root>/<notebook>@key=v/`` holds a
metrics.json with ``"sweep": {"key": "v"}`` and ``"run_seconds"`` (added by the CLI) and, optionally,
``"sweep_row"``: the few numbers that compare runs (e.g. ``{"PSNR (dB)": .., "SSIM": .., "parameters":
.., "train s": .., "train-val gap (dB)": ..}``; the headline is used when absent).
:func:`sweep_tables` turns them into one table per notebook; :func:`write_report` adds the table and
a bar plot per numeric column (``sweep_<notebook>.png``) to report.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from labkit import runfolder
from labkit.files import atomic_write_text

METRICS_FILE = "metrics.json"
RUN_SUMMARY_FILE = "run_summary.json"
REPORT_FILE = "report.md"
#: The line :func:`save_metrics` prints, and :func:`labkit.drift.committed_headline` finds in a notebook's outputs.
HEADLINE_PREFIX = "headline: "


def _plain(value: Any) -> Any:
    """Turn numpy/torch scalars and paths into JSON-friendly Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return value.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (:func:`labkit.files.atomic_write_text`)."""
    return atomic_write_text(path, json.dumps(_plain(data), indent=2, sort_keys=False) + "\n")


def save_metrics(
    out_dir: str | os.PathLike,
    *,
    notebook: str,
    profile: str,
    title: str,
    headline: Mapping[str, Any],
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    notes: Iterable[str] = (),
    echo: bool = True,
    **extra: Any,
) -> Path:
    """Record a notebook's results as ``<out_dir>/metrics.json`` (see the module docstring).

    Args:
        out_dir: the notebook's run folder.
        notebook: the notebook's stem, e.g. ``"02_sr_trials_edsr_srgan_swinir"``.
        profile: ``"smoke"`` or ``"full"``.
        title: the lab's title for the report.
        headline: the few numbers the report's summary table shows (name -> value; put the unit
            and convention in the name, e.g. ``"EDSR PSNR-Y (dB)"``).
        tables: named tables, each a list of row dicts with the same keys.
        notes: free-text lines (which convention, what was skipped and why).
        echo: also print the headline as one ``headline: {json}`` line. In a committed notebook that
            line is what :func:`labkit.drift.committed_headline` reads back to catch drift.
        extra: anything else JSON-serialisable (configs, histories).

    Returns the path written.
    """
    record = {
        "notebook": notebook,
        "profile": profile,
        "title": title,
        "headline": dict(headline),
        "tables": {k: [dict(r) for r in rows] for k, rows in (tables or {}).items()},
        "notes": list(notes),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        **extra,
    }
    path = write_json_atomic(Path(out_dir) / METRICS_FILE, record)
    if echo:
        print(HEADLINE_PREFIX + json.dumps(_plain(dict(headline)), sort_keys=True))
    return path


def collect(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Read every ``<root>/*/metrics.json``, sorted by notebook name (``<name>.partial/`` and aside
    copies left out: see :mod:`labkit.runfolder`).

    Raises:
        ValueError: a metrics file is not valid JSON (the message names it).
    """
    records = []
    for path in sorted(Path(root).glob(f"*/{METRICS_FILE}")):
        if runfolder.is_work_folder(path.parent):
            continue  # an unfinished attempt (<name>.partial/) or an aside copy: not a result
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        record.setdefault("notebook", path.parent.name)
        record.setdefault("run", path.parent.name)
        records.append(record)
    return sorted(records, key=lambda r: r["notebook"])


def read_run_summary(root: str | os.PathLike) -> dict[str, Any] | None:
    """``<root>/run_summary.json`` as written by ``labkit run``, or None when there is none.

    Raises:
        ValueError: the file is not valid JSON (the message names it and the ways on).
    """
    path = Path(root) / RUN_SUMMARY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete it (the next `labkit run` writes a new one) "
                         f"or use --out DIR") from exc
    return summary if isinstance(summary, dict) else None


def settle_run_folder(root: str | os.PathLike) -> dict[str, Any] | None:
    """Bring ``<root>/run_summary.json`` and the result files up to date after a killed ``labkit run``.

    A ``running`` entry whose process is gone (:func:`labkit.runfolder.process_alive`; e.g. SIGKILL,
    a disconnected runtime) becomes ``interrupted``. A replacement of a result that was cut short
    (:func:`labkit.runfolder.finish_swap`) is completed, and its entry set to the finished attempt
    (ok). Entries of live runs are left alone. The summary is rewritten only when something changed.

    Returns:
        The (settled) summary, or None when there is no run_summary.json.

    Raises:
        ValueError: run_summary.json is not valid JSON. OSError: a file cannot be renamed or written.
    """
    root = Path(root)
    summary = read_run_summary(root)
    entries = {e["notebook"]: e for e in (summary or {}).get("notebooks", []) if isinstance(e, dict) and "notebook" in e}
    changed = False
    for entry in entries.values():
        if entry.get("status") == "running" and not runfolder.process_alive(entry):
            entry.update(status="interrupted", error=f"process {entry.get('pid')} ended without recording an "
                                                     f"outcome (killed?)")
            changed = True
    for name in runfolder.pending_swaps(root):
        if entries.get(name, {}).get("status") == "running":
            continue  # a live run is replacing it right now
        record = runfolder.finish_swap(runfolder.run_paths(root, name))
        if record and name in entries:
            entries[name].clear()
            entries[name].update(record)
            changed = True
    if changed and summary is not None:
        write_json_atomic(root / RUN_SUMMARY_FILE, summary)
    return summary


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Render rows (dicts) as a GitHub markdown table; columns in first-seen order."""
    if not rows:
        return "_(empty)_"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def sweep_tables(records: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One comparison table per swept notebook: notebook -> rows, in the order the runs were made.

    A row is the run's swept values, then its ``sweep_row`` (or headline), then ``run s`` (the
    run's wall-clock seconds). Records without a ``sweep`` entry are left out.
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        if isinstance(r.get("sweep"), Mapping):
            grouped.setdefault(str(r["notebook"]), []).append(r)
    out: dict[str, list[dict[str, Any]]] = {}
    for notebook, recs in grouped.items():
        recs = sorted(recs, key=lambda r: (str(r.get("created", "")), str(r.get("run", ""))))
        rows = []
        for r in recs:
            row: dict[str, Any] = dict(r["sweep"])
            row.update(r.get("sweep_row") or r.get("headline") or {})
            if "run_seconds" in r:
                row["run s"] = r["run_seconds"]
            rows.append(row)
        out[notebook] = rows
    return out


def plot_sweep(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "") -> Path | None:
    """Bar charts of a sweep table (one panel per numeric column, one bar per run); saved to ``path``.

    The runs are labelled by their swept values (the columns before the first numeric one).
    Returns the path, or None when the table has no numeric column.
    """
    # matplotlib takes a while to import and the CLI imports this module: loaded only for a sweep's plot
    # (and the Agg back end chosen before pyplot, unless one is already set).
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    def numeric(c: str) -> bool:
        vals = [row.get(c) for row in rows]
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals if v is not None) and any(
            v is not None for v in vals)
    keys = [c for c in columns if not numeric(c)]
    values = [c for c in columns if numeric(c)]
    if not values:
        return None
    labels = [",".join(str(row.get(k, "")) for k in keys) or str(i) for i, row in enumerate(rows)]
    fig, axes = plt.subplots(1, len(values), figsize=(2.6 * len(values) + 0.5, 3.0), squeeze=False)
    for ax, c in zip(axes[0], values):
        ys = [float(row.get(c) or 0.0) for row in rows]
        ax.bar(range(len(rows)), ys, color="tab:blue")
        ax.set_xticks(range(len(rows)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(c, fontsize=9)
        if "psnr" in c.lower() or "ssim" in c.lower():
            lo, hi = min(ys), max(ys)
            pad = max(hi - lo, 1e-3) * 0.5
            ax.set_ylim(lo - pad, hi + pad)  # differences between runs, not the absolute level
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _when(iso: Any) -> str:
    """``2026-12-02T13:50:07`` -> ``2026-12-02 13:50``; ``?`` when unknown."""
    return str(iso)[:16].replace("T", " ") if iso else "?"


def _settings_text(profile: Any, parameters: Any) -> str:
    """``smoke; seed=1, sleep=0.5`` (``defaults`` without parameters)."""
    params = ", ".join(f"{k}={v}" for k, v in (parameters or {}).items()) or "defaults"
    return f"{profile or '?'}; {params}"


def attempt_status(entry: Mapping[str, Any]) -> str:
    """A summary entry's status as the report says it: ``ok``, ``failed at cell 3``, ``interrupted (SIGTERM)``,
    ``running (pid 123)``."""
    status = str(entry.get("status", "?"))
    if status == "failed" and entry.get("cell") is not None:
        return f"failed at cell {entry['cell']}"
    if status == "interrupted":
        error = str(entry.get("error", ""))
        return f"interrupted ({error})" if error.startswith("SIG") else "interrupted (process gone)"
    if status == "running":
        where = "" if runfolder.on_this_host(entry) else f" on {entry.get('host')}, not this machine"
        return f"running (pid {entry.get('pid')}{where})"
    return status


def numbers_source(entry: Mapping[str, Any], record: Mapping[str, Any] | None) -> str:
    """Which run the numbers the report shows for a notebook come from (its last good one)."""
    if record is None:
        return "none (no ok run yet)"
    if entry.get("status") == "ok":
        return "this attempt"
    last = entry.get("last_ok")
    if last:
        return f"last ok run, {_when(last.get('finished'))} ({_settings_text(last.get('profile'), last.get('parameters'))})"
    return f"an earlier run (metrics.json of {_when(record.get('created'))})"


def runs_section(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report's ``## Runs`` lines: a table of each notebook's latest attempt and which run its numbers
    come from, then one line per attempt that failed or was interrupted (the error, the partial notebook)."""
    by_run = {str(r.get("run", r["notebook"])): r for r in records}
    rows, notes = [], []
    for e in summary.get("notebooks", []):
        name = str(e.get("notebook"))
        seconds = e.get("seconds")
        rows.append({"notebook": name, "latest attempt": attempt_status(e), "started": _when(e.get("started")),
                     "s": f"{seconds:.0f}" if isinstance(seconds, (int, float)) else "",
                     "settings": _settings_text(e.get("profile") or summary.get("profile"), e.get("parameters")),
                     "numbers shown": numbers_source(e, by_run.get(name))})
        if e.get("status") in ("failed", "interrupted"):
            kept = f"; partial run kept: {e['partial']}" if e.get("partial") else ""
            notes.append(f"- {name} ({e.get('status')}): {e.get('error', '')}{kept}")
    return ["## Runs", "", markdown_table(rows), "", *notes, *([""] if notes else [])]


def _profile_line(records: Sequence[Mapping[str, Any]], run_summary: Mapping[str, Any] | None) -> str:
    """``Profile: smoke`` (the results'), naming a profile only attempted (no ok result yet) as such."""
    profiles = sorted({str(r.get("profile", "?")) for r in records})
    entries = (run_summary or {}).get("notebooks", [])
    tried = {str(e.get("profile") or (run_summary or {}).get("profile")) for e in entries}
    tried = sorted(tried - set(profiles) - {"None", ""})
    if not profiles:
        return f"Profile: none finished ok (attempted: {', '.join(tried)})" if tried else "Profile: none"
    return f"Profile: {', '.join(profiles)}" + (f" (latest attempts also: {', '.join(tried)})" if tried else "")


def render_report(records: Sequence[Mapping[str, Any]], run_summary: Mapping[str, Any] | None = None,
                  plots: Mapping[str, str] | None = None) -> str:
    """The markdown text of the report for ``records`` (from :func:`collect`); ``plots`` maps a
    swept notebook to its plot's path relative to the report; ``run_summary`` (run_summary.json) gives
    the ``## Runs`` section (:func:`runs_section`)."""
    lines = ["# restoration-lab results", ""]
    lines.append(f"{_profile_line(records, run_summary)}. Generated {_dt.datetime.now():%Y-%m-%d %H:%M}.")
    lines.append("")
    latest = {str(e.get("notebook")): e for e in (run_summary or {}).get("notebooks", [])}
    if latest:
        lines += runs_section(run_summary or {}, records)
    if not records:
        lines += ["No notebook has finished ok yet (see Runs above)." if latest else
                  "No metrics.json found: run `labkit run` first.", ""]
        return "\n".join(lines)
    lines += ["## Headlines", ""]
    for r in records:
        run = str(r.get("run", r["notebook"]))
        entry = latest.get(run)
        stale = (f" _(from the run of {_when(r.get('created'))}; latest attempt: {attempt_status(entry)})_"
                 if entry and entry.get("status") != "ok" else "")
        lines.append(f"**{run}**: {r.get('title', '')}{stale}")
        lines.append("")
        lines.append(markdown_table([r.get("headline", {})]))
        lines.append("")
    for notebook, rows in sweep_tables(records).items():
        lines += [f"## Sweep: {notebook}", "", markdown_table(rows), ""]
        if plots and notebook in plots:
            lines += [f"![sweep {notebook}]({plots[notebook]})", ""]
    for r in records:
        tables = r.get("tables") or {}
        notes = r.get("notes") or []
        if not tables and not notes:
            continue
        lines += [f"## {r.get('run', r['notebook'])}", ""]
        for name, rows in tables.items():
            lines += [f"### {name}", "", markdown_table(rows), ""]
        for note in notes:
            lines.append(f"- {note}")
        if notes:
            lines.append("")
    return "\n".join(lines)


def write_report(root: str | os.PathLike) -> Path:
    """Collect ``<root>/*/metrics.json`` (and ``run_summary.json``, settled first: :func:`settle_run_folder`)
    into ``<root>/report.md``.

    Raises:
        ValueError: a metrics.json or run_summary.json is not valid JSON (the message names it).
    """
    root = Path(root)
    summary = settle_run_folder(root) if root.is_dir() else None
    records = collect(root)
    root.mkdir(parents=True, exist_ok=True)
    plots = {}
    for notebook, rows in sweep_tables(records).items():
        made = plot_sweep(rows, root / f"sweep_{notebook}.png", title=f"sweep: {notebook}")
        if made is not None:
            plots[notebook] = made.name
    text = render_report(records, summary, plots)
    out = root / REPORT_FILE
    return atomic_write_text(out, text + "\n")
