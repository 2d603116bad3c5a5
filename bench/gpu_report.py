"""The figures of bench/gpu_check.sh: read one run's folder back (MLflow, Optuna, nvidia-smi samples), and
print the table of all runs.

    python bench/gpu_report.py run RUN_DIR          -> RUN_DIR/result.json and one line
    python bench/gpu_report.py table RUNS_DIR [--gpus N] [--cores N]

A run folder holds out.log (the sweeplab command's output), util.csv (`nvidia-smi --query-gpu=index,
utilization.gpu,memory.used --format=csv,noheader,nounits -l 1` during the run), wall_seconds,
exit_code, and the run's own mlruns/ (SQLite MLflow store, Optuna journal).

- samples/s: `train/samples_per_second` per epoch (training time only, all ranks summed under DDP),
  the median of the epochs after the first (the first pays CUDA start-up and autotuning); per GPU:
  divided by the GPUs the run used.
- GPU utilisation: nvidia-smi's utilization.gpu over the busy window (first to last sample above 0 on
  any GPU, so imports and data loading before training are left out), mean over the window and the
  GPUs that were busy at all; max = the highest single sample.
- trials/hour: finished trials (complete + pruned) / (last trial's end - first trial's start), as
  bench/workers_scaling.py measures it (the driver's start-up and summary are not counted).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path


def gpu_util(path: Path) -> dict:
    samples: list[list[tuple[int, float]]] = []   # one list of (gpu, util) per second
    current: list[tuple[int, float]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        gpu, util = int(parts[0]), float(parts[1]) if parts[1].replace(".", "").isdigit() else 0.0
        if current and gpu <= current[-1][0]:
            samples.append(current)
            current = []
        current.append((gpu, util))
    if current:
        samples.append(current)
    busy = [i for i, s in enumerate(samples) if any(u > 0 for _, u in s)]
    if not busy:
        return {"util_mean": None, "util_max": None, "util_samples": len(samples)}
    window = samples[busy[0]:busy[-1] + 1]
    used = {g for s in window for g, u in s if u > 0}
    values = [u for s in window for g, u in s if g in used]
    return {"util_mean": round(statistics.fmean(values), 1), "util_max": max(values),
            "util_samples": len(window), "gpus_busy": len(used)}


def train_figures(folder: Path, log: str) -> dict:
    from mlflow import MlflowClient

    found = re.findall(r"MLflow run ([0-9a-f]{32})", log)
    if not found:
        return {"error": "no MLflow run id in out.log"}
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    history = sorted(client.get_metric_history(found[-1], "train/samples_per_second"), key=lambda m: m.step)
    rates = [m.value for m in history]
    steady = rates[1:] or rates
    metrics = client.get_run(found[-1]).data.metrics
    return {"run_id": found[-1], "samples_per_second": round(statistics.median(steady), 1) if steady else None,
            "epochs": len(rates), "val_acc": metrics.get("val/acc"), "test_acc": metrics.get("test/acc")}


def sweep_figures(folder: Path, log: str) -> dict:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = folder / "mlruns" / "optuna.journal"
    if not journal.exists():
        return {"error": "no Optuna journal"}
    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="fashion_cnn", storage=storage)
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    figures = {"finished": len(finished),
               "complete": sum(t.state == TrialState.COMPLETE for t in finished),
               "plan": next((line for line in log.splitlines() if line.startswith("plan: ")), None)}
    workers = re.search(r"(\d+) worker\(s\)", log)
    figures["workers"] = int(workers[1]) if workers else None
    if finished:
        start = min(t.datetime_start for t in finished)
        end = max(t.datetime_complete for t in finished)
        seconds = max((end - start).total_seconds(), 1e-9)
        figures["trials_per_hour"] = round(len(finished) / seconds * 3600, 1)
        figures["best"] = max((t.value for t in finished if t.state == TrialState.COMPLETE), default=None)
    return figures


def run(folder: Path) -> dict:
    if (folder / "skipped").exists():
        return {"skipped": True}
    log = (folder / "out.log").read_text(errors="replace") if (folder / "out.log").exists() else ""
    result = {"name": folder.name, "exit_code": int((folder / "exit_code").read_text() or -1),
              "wall_seconds": int((folder / "wall_seconds").read_text() or 0), **gpu_util(folder / "util.csv")}
    try:
        result.update(sweep_figures(folder, log) if folder.name.startswith("sweep") else train_figures(folder, log))
    except Exception as e:  # a failed run still gets its line in the table
        result["error"] = f"{type(e).__name__}: {e}"
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    return result


ROWS = [  # run folder, what, loader
    ("gpu_cpu_loader", "train, 1 GPU", "CPU loader"),
    ("gpu_on_device", "train, 1 GPU", "on_device"),
    ("ddp_on_device", "train, ddp {gpus} GPUs", "on_device"),
    ("cpu", "train, trainer=cpu ({cores} cores)", "CPU loader"),
    ("sweep_cpu_loader", "sweep, workers=auto ({workers})", "CPU loader"),
    ("sweep_on_device", "sweep, workers=auto ({workers})", "on_device"),
    ("sweep_packed_4", "sweep, {workers} workers on 1 GPU", "on_device"),
    ("sweep_packed_8", "sweep, {workers} workers on 1 GPU", "on_device"),
    ("gpu_batch_512", "train, 1 GPU, batch 512", "on_device"),
]


def table(folder: Path, gpus: int, cores: int) -> str:
    results = {}
    for name, *_ in ROWS:
        path = folder / name / "result.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    per_gpu = {}
    for name, result in results.items():
        rate = result.get("samples_per_second")
        if rate is not None:
            per_gpu[name] = rate / (gpus if name.startswith("ddp") else 1)
    base_rate = per_gpu.get("gpu_cpu_loader")
    base_trials = results.get("sweep_cpu_loader", {}).get("trials_per_hour")
    header = ["run", "loader", "samples/s/GPU", "GPU util % mean/max", "trials/h", "vs CPU loader"]
    lines = []
    for name, what, loader in ROWS:
        result = results.get(name)
        if result is None or result.get("skipped"):
            continue
        what = what.format(gpus=gpus, cores=cores, workers=result.get("workers"))
        rate = per_gpu.get(name)
        trials = result.get("trials_per_hour")
        util = ("-" if name == "cpu" or result.get("util_mean") is None
                else f"{result['util_mean']:.0f} / {result['util_max']:.0f}")
        ratio = ""
        if rate is not None and base_rate and name != "gpu_cpu_loader":
            ratio = f"{rate / base_rate:.2f}x samples/s"
        elif trials is not None and base_trials and name != "sweep_cpu_loader":
            ratio = f"{trials / base_trials:.2f}x trials/h"
        failed = f"exit {result['exit_code']}" if result.get("exit_code") else ""
        if result.get("error"):
            failed = (failed + " " + result["error"]).strip()
        lines.append([what, loader, f"{rate:,.0f}" if rate is not None else "-", util,
                      f"{trials:,.0f}" if trials is not None else "-", ratio or failed])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *lines])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("run", "table"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--cores", type=int, default=0)
    args = parser.parse_args()
    if args.what == "table":
        print(table(args.folder, args.gpus, args.cores))
        return 0
    result = run(args.folder)
    shown = {k: v for k, v in result.items() if k in ("samples_per_second", "epochs", "val_acc", "finished",
                                                         "trials_per_hour", "plan", "util_mean", "util_max",
                                                         "wall_seconds", "error")}
    print(f"    {json.dumps(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
