"""Transfer learning on Fashion-MNIST: fine-tuned vs from-scratch test accuracy at equal epochs (issue 11).

Three steps through the installed `sweeplab` command, recorded in an MLflow store of their own (in
--workdir, a temporary folder by default):
  1. pretrain the CNN on classes 0-4 (experiment=fashion_pretrain_0to4), once;
  2. per seed, fine-tune it on classes 5-9 from 500 labelled images (experiment=fashion_finetune_5to9
     finetune.init_from=<step 1's run id>: the backbone's weights, a fresh head);
  3. per seed, the same data, model and epochs from random weights (experiment=fashion_scratch_5to9).
The table gives test/acc (the 5,000 test images of classes 5-9, on the best validation epoch's checkpoint)
per seed, its mean and standard deviation, and each step's wall time. The seed changes the head's (and the
scratch network's) initial weights and the batch order; the 500 images are the same (data.split_seed).

    python bench/transfer.py [--seeds 0 1 2] [--epochs 10] [--pretrain-epochs 2] [--pretrain-size 10000]
                             [--workdir DIR] [--pretrained RUN_ID] [--finetune KEY=VALUE ...] [--no-scratch]
                             [KEY=VALUE ... (overrides for steps 2 and 3)]
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

SWEEPLAB = str(Path(sys.executable).parent / "sweeplab")
QUIET = ["tracking.log_model=false", "tracking.system_metrics_interval=null", "trainer.enable_progress_bar=false"]


@dataclass
class Step:
    run_id: str
    wall: float   # seconds
    cpu: float    # CPU seconds (user + system) of the process: what the step costs when the cores are shared


def train(workdir: Path, *overrides: str) -> Step:
    """Run `sweeplab train`."""
    before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([SWEEPLAB, "train", *overrides, *QUIET], cwd=workdir, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - before
    if done.returncode != 0:
        sys.exit(f"sweeplab train {' '.join(overrides)} failed:\n{done.stderr[-3000:]}")
    return Step(re.search(r"MLflow run (\w+) \(FINISHED\)", done.stdout).group(1), wall, cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of steps 2 and 3 (equal)")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--pretrain-size", type=int, default=10000, help="training images of classes 0-4")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--pretrained", metavar="RUN_ID", help="skip step 1: fine-tune this run of --workdir's store")
    parser.add_argument("--finetune", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for step 2 only, e.g. finetune.freeze=[backbone.*] "
                             "finetune.unfreeze_at_epoch=2")
    parser.add_argument("--no-scratch", action="store_true", help="skip step 3 (compare fine-tuning recipes)")
    parser.add_argument("overrides", nargs="*", help="key=value for steps 2 and 3")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sweeplab-transfer-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def test_acc(run_id: str) -> float:   # a client only once the store exists (sweeplab creates it)
        client = MlflowClient(f"sqlite:///{workdir.resolve() / 'mlruns' / 'mlflow.db'}")
        return client.get_run(run_id).data.metrics["test/acc"]

    pretrain = None
    if not args.pretrained:
        pretrain = train(workdir, "experiment=fashion_pretrain_0to4", f"trainer.max_epochs={args.pretrain_epochs}",
                         f"data.train_size={args.pretrain_size}")
        print(f"pretrained on classes 0-4 ({args.pretrain_size} images, {args.pretrain_epochs} epochs): run "
              f"{pretrain.run_id}, test/acc {test_acc(pretrain.run_id):.4f} on classes 0-4, "
              f"{pretrain.wall:.0f} s wall, {pretrain.cpu:.0f} s CPU", flush=True)
    source = args.pretrained or pretrain.run_id
    variants = {"fine-tuned": ["experiment=fashion_finetune_5to9", f"finetune.init_from={source}", *args.finetune]}
    if not args.no_scratch:
        variants["from scratch"] = ["experiment=fashion_scratch_5to9"]
    results: dict[str, list[tuple[float, Step]]] = {name: [] for name in variants}
    for seed in args.seeds:
        for name, overrides in variants.items():
            step = train(workdir, *overrides, f"seed={seed}", f"trainer.max_epochs={args.epochs}", *args.overrides)
            results[name].append((test_acc(step.run_id), step))
            print(f"  seed {seed} {name:<12}  test/acc {results[name][-1][0]:.4f}  {step.wall:.0f} s wall  "
                  f"{step.cpu:.0f} s CPU  (run {step.run_id})", flush=True)

    print(f"\nclasses 5-9, 500 labelled images, {args.epochs} epochs each, seeds {' '.join(map(str, args.seeds))}"
          f"{' ' + ' '.join(args.overrides) if args.overrides else ''}"
          f"{'; fine-tuned with ' + ' '.join(args.finetune) if args.finetune else ''}")
    print(f"{'start':<14}{'test/acc mean ± std':>22}{'per seed':>28}{'wall s/run':>12}{'CPU s/run':>11}")
    for name, rows in results.items():
        accs = [acc for acc, _ in rows]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"{name:<14}{statistics.mean(accs):>14.4f} ± {spread:.4f}{' '.join(f'{a:.4f}' for a in accs):>28}"
              f"{statistics.mean(s.wall for _, s in rows):>12.0f}{statistics.mean(s.cpu for _, s in rows):>11.0f}")
    if pretrain:
        print(f"(plus pretraining, once: {pretrain.wall:.0f} s wall, {pretrain.cpu:.0f} s CPU)")
    print(f"MLflow store: {workdir / 'mlruns'} (sweeplab ui there)")


if __name__ == "__main__":
    main()
