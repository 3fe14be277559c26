"""``nlbench report RUN_DIR``: plots and a markdown summary of one run, from its record.

Plots use matplotlib's object API with the Agg canvas (no pyplot global state, no display);
matplotlib is optional (``pip install 'nlbench[report]'``). Works on unfinished runs too: the
epochs then come from ``epochs.jsonl``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlbench.boards.leaderboard import DASH, pipe_table
from nlbench.core.errors import UsageError
from nlbench.core.manifest import Outputs
from nlbench.core.record import EPOCH_METRICS, read_record

if TYPE_CHECKING:  # matplotlib is optional (nlbench[report]) and loaded on use
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

# file stem -> (title, y label, [(metric, legend label)])
PLOTS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "accuracy": ("Test accuracy", "accuracy", [("test_acc", "test"), ("val_acc", "val (clean)")]),
    "fit": (
        "Fit to the training labels",
        "accuracy",
        [
            ("noisy_fit", "noisy_fit: corrupted samples, noisy label"),
            ("clean_fit", "clean_fit: correctly labelled samples"),
            ("train_acc_noisy", "all samples, noisy label"),
        ],
    ),
    "selection": (
        "Sample selection",
        "fraction",
        [
            ("selected_precision", "selected precision"),
            ("selected_recall", "selected recall"),
            ("detection_auc", "clean detection AUC"),
        ],
    ),
    "gradients": (
        "Gradient cosine similarity",
        "cosine",
        [("grad_cos_clean_all", "clean vs all"), ("grad_cos_clean_noisy", "clean vs corrupted")],
    ),
}
SUMMARY_NUMBERS = (
    "best_acc",
    "best_epoch",
    "last_acc",
    "last10_acc",
    "wall_s",
    "cpu_s",
    "images_per_s",
)
# the epoch table: the schema's fields and every result (val_acc when there is a val split)
EPOCH_COLUMNS = tuple(m.name for m in EPOCH_METRICS if m.schema or m.kind == "result")


def load_run(run_dir: Path) -> dict[str, Any]:
    """The record of ``run_dir``; epochs from ``epochs.jsonl`` when run.json has none yet.

    A hand-edited record is checked for what the report reads: one usage error naming the
    first bad field, before anything is written.
    """
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise UsageError(f"{run_dir}: no run.json here; pass a run directory (runs/<run_id>)")
    record = read_record(path)
    lines = Path(run_dir) / "epochs.jsonl"
    if not record["epochs"] and lines.is_file():
        try:
            text = lines.read_text(encoding="utf-8").splitlines()
            record["epochs"] = [json.loads(line) for line in text if line.strip()]
        except (OSError, ValueError) as exc:
            raise UsageError(f"{lines}: not a readable epoch log ({exc})") from None
    check_report_record(record, str(path))
    return record


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_report_record(record: dict[str, Any], where: str) -> None:
    """What :func:`summary_markdown` and :func:`plot` read has the type they expect."""
    for key in ("config", "noise", "summary"):
        if not isinstance(record.get(key), dict):
            raise UsageError(f"{where}: {key} must be an object")
    cfg = record["config"]
    for key in ("method", "dataset", "profile", "noise"):
        if not isinstance(cfg.get(key), str):
            raise UsageError(f"{where}: config.{key} must be a string")
    if not isinstance(cfg.get("hparams", {}), dict):
        raise UsageError(f"{where}: config.hparams must be an object")
    if not isinstance(record["run_id"], str) or not isinstance(record["status"], str):
        raise UsageError(f"{where}: run_id and status must be strings")
    if not isinstance(record.get("flags") or [], list):
        raise UsageError(f"{where}: flags must be a list")
    metrics = {k for _, _, lines in PLOTS.values() for k, _ in lines} | set(EPOCH_COLUMNS)
    epochs = record["epochs"]
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise UsageError(f"{where}: epochs must be a list of objects")
    for e in epochs:
        if type(e.get("epoch")) is not int or not all(_is_number(e.get(k)) for k in metrics):
            raise UsageError(f"{where}: epoch {str(e.get('epoch'))[:20]} holds a non-number")
    summary = record["summary"]
    if not all(_is_number(summary.get(k)) for k in SUMMARY_NUMBERS):
        raise UsageError(f"{where}: summary holds a non-number")
    if not _is_number(record["noise"].get("realized_rate")):
        raise UsageError(f"{where}: noise.realized_rate must be a number")


def _canvas() -> tuple[type[Figure], type[FigureCanvasAgg]]:
    try:
        # lazy: matplotlib is an optional dependency (nlbench[report])
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(
            "nlbench report needs matplotlib; install it with pip install 'nlbench[report]'"
        ) from None
    return Figure, FigureCanvasAgg


def series(epochs: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(e["epoch"] + 1, e[key]) for e in epochs if e.get(key) is not None]  # 1-based
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def figure_title(title: str, record: dict[str, Any] | None) -> str:
    """The plot's title over the run it shows (run id, method, dataset, noise), so a PNG read
    on its own still names its run."""
    if not record:
        return title
    cfg = record.get("config") or {}
    run = f"{record.get('run_id', '?')}: {cfg.get('method', '?')} on {cfg.get('dataset', '?')}"
    return f"{title}\n{run}, noise {cfg.get('noise', '?')}"


def plot(epochs: list[dict[str, Any]], record: dict[str, Any] | None = None) -> dict[str, bytes]:
    """One PNG per plot that has data, titled with ``record``'s run, as ``{file name: bytes}``."""
    Figure, Canvas = _canvas()
    written = {}
    for stem, (title, ylabel, lines) in PLOTS.items():
        data = [(label, *series(epochs, key)) for key, label in lines]
        data = [d for d in data if d[1]]
        if not data:
            continue
        fig = Figure(figsize=(6, 4), dpi=100)
        Canvas(fig)
        ax = fig.add_subplot()
        for label, xs, ys in data:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=label)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.set_title(figure_title(title, record), fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        written[f"{stem}.png"] = buffer.getvalue()
    return written


def _fmt(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _acc(value: Any) -> str:
    return DASH if value is None else f"{100 * value:.2f} %"


def _facts(record: dict[str, Any]) -> list[list[str]]:
    cfg, noise, s = record["config"], record["noise"], record["summary"]
    best_epoch = None if s.get("best_epoch") is None else s["best_epoch"] + 1  # shown 1-based
    best = f"{_acc(s.get('best_acc'))} at epoch {_fmt(best_epoch)} (oracle)"
    ref = f" ({record['reference']})" if record.get("reference") else ""
    speed = s.get("images_per_s")
    return [
        ["method", f"`{cfg['method']}`{ref}"],
        ["dataset / profile", f"`{cfg['dataset']}` / `{cfg['profile']}`"],
        [
            "noise",
            (
                f"`{cfg['noise']}`, realized {_acc(noise.get('realized_rate'))} "
                f"({noise.get('convention') or DASH})"
            ),
        ],
        ["model / epochs", f"`{cfg.get('model')}` / {cfg['hparams'].get('epochs')}"],
        ["seed / noise seed", f"{cfg['seed']} / {cfg['noise_seed']}"],
        ["flags", ", ".join(record.get("flags") or []) or DASH],
        ["status", record["status"] + (f": {record['error']}" if record.get("error") else "")],
        ["last-epoch accuracy", _acc(s.get("last_acc"))],
        ["last-10 mean", _acc(s.get("last10_acc"))],
        ["best", best],
        ["epochs to fit the noisy labels (99 %)", _fmt(s.get("epochs_to_fit"))],
        ["wall clock", DASH if s.get("wall_s") is None else f"{s['wall_s']:.1f} s"],
        ["CPU time (all threads)", DASH if s.get("cpu_s") is None else f"{s['cpu_s']:.1f} s"],
        ["throughput", DASH if speed is None else f"{speed:.0f} images/s"],
    ]


def summary_markdown(record: dict[str, Any], images: list[Path]) -> str:
    """A page a person would rather read than run.json: facts, plots, the epoch table."""
    lines = [f"# Run `{record['run_id']}`", "", pipe_table(["", ""], _facts(record))]
    lines += [f"![{p.stem}]({p.name})" for p in images]
    epochs = record["epochs"]
    cols = [c for c in EPOCH_COLUMNS if any(e.get(c) is not None for e in epochs)]
    # epochs are 0-based in records and 1-based wherever a person reads them (as the CLI prints)
    rows = [[_fmt(e["epoch"] + 1 if c == "epoch" else e.get(c)) for c in cols] for e in epochs]
    lines += ["", "## Epochs", "", pipe_table(cols, rows) if epochs else "No epochs yet.\n"]
    hp = record["config"].get("hparams", {})
    lines += [
        "## Hyper-parameters",
        "",
        pipe_table(["key", "value"], [[k, json.dumps(hp[k])] for k in sorted(hp)]),
    ]
    return "\n".join(lines)


def report(run_dir: Path, out: Path | None = None) -> Path:
    """Write ``report.md`` and its PNGs to ``out`` (default ``RUN_DIR/report``).

    The files are listed in ``out``'s manifest (:mod:`nlbench.core.manifest`): a later report
    replaces only those, and a user's file at one of their names is refused, not overwritten.
    """
    record = load_run(Path(run_dir))
    out = Path(out) if out is not None else Path(run_dir) / "report"
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"--out {out} is a file or a symbolic link. Accepted: a directory")
    images = plot(record["epochs"], record)
    files: dict[str, str | bytes] = dict(images)
    files["report.md"] = summary_markdown(record, [Path(name) for name in images])
    Outputs(out, "report", legacy_owned=_legacy_report).write(files)
    return out / "report.md"


def _legacy_report(name: str, path: Path) -> bool:
    """A report folder from before the manifest: ours when its report.md is a run report."""
    page = path.parent / "report.md"
    known = name == "report.md" or name in {f"{stem}.png" for stem in PLOTS}
    return known and page.is_file() and page.read_bytes().startswith(b"# Run `")
