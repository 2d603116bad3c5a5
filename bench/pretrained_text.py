"""Rotten Tomatoes: a pretrained encoder fine-tuned, the same encoder frozen, and two models trained from scratch (issue 19).

Four rows, each one `sweeplab train` through the installed command, recorded in an MLflow store of its own
(in --workdir, a temporary folder by default), on the project's split (data.split_seed=0):
  (a) experiment=text_minilm: all-MiniLM-L6-v2 fine-tuned, its default config (1 epoch, AdamW 5e-5, warm-up 6 %);
  (b) the same encoder frozen (finetune.freeze=[backbone.*]): only the head trains, on features computed once
      per process (the first epoch pays the encoding; the later ones reuse it);
  (c) experiment=text_transformer and (d) experiment=text_lstm, from random weights, their default configs.
Printed per row: test/acc (on the best validation epoch's checkpoint), val/acc, epochs, the first epoch's and
the mean later epoch's wall time (MLflow's train/epoch_seconds: an epoch's training and its validation), and the
command's whole wall time (imports, tokenizing, the test set on top). Goal: (a) test/acc >= 0.82, an epoch <= 8 min.

    python bench/pretrained_text.py [--rows a b c d] [--frozen-epochs 10] [--workdir DIR] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

SWEEPLAB = str(Path(sys.executable).parent / "sweeplab")
QUIET = ["tracking.log_model=false", "tracking.log_checkpoint=false", "tracking.system_metrics_interval=null",
         "trainer.enable_progress_bar=false"]


def rows(frozen_epochs: int) -> dict[str, tuple[str, list[str]]]:
    return {
        "a": ("MiniLM fine-tuned", ["experiment=text_minilm"]),
        "b": ("MiniLM frozen, head trained", ["experiment=text_minilm", "finetune.freeze=[backbone.*]",
                                              "optimizer.lr=0.002", f"trainer.max_epochs={frozen_epochs}"]),
        "c": ("text_transformer (scratch)", ["experiment=text_transformer"]),
        "d": ("text_lstm (scratch)", ["experiment=text_lstm"]),
    }


def train(workdir: Path, overrides: list[str]) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run([SWEEPLAB, "train", *overrides, *QUIET], cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"sweeplab train {' '.join(overrides)} failed:\n{done.stderr[-3000:]}")
    return re.search(r"MLflow run ([0-9a-f]{32})", done.stdout).group(1), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list("abcd"), choices=list("abcd"))
    parser.add_argument("--frozen-epochs", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE for every row (e.g. trainer.limit_train_batches=20)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pretrained-"))
    workdir.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    print(f"{'row':<32} {'test/acc':>8} {'val/acc':>8} {'epochs':>6} {'epoch 1 s':>9} {'later s':>8} {'wall s':>8}")
    for key in args.rows:
        label, overrides = rows(args.frozen_epochs)[key]
        run_id, wall = train(workdir, [*overrides, *args.overrides])
        metrics = client.get_run(run_id).data.metrics
        epochs = [m.value for m in client.get_metric_history(run_id, "train/epoch_seconds")]
        later = f"{statistics.mean(epochs[1:]):8.1f}" if len(epochs) > 1 else f"{'-':>8}"
        print(f"({key}) {label:<28} {metrics['test/acc']:8.4f} {metrics['val/acc']:8.4f} {len(epochs):6d} "
              f"{epochs[0]:9.1f} {later} {wall:8.1f}", flush=True)
    print(f"runs in {workdir}/mlruns; command: python bench/pretrained_text.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
