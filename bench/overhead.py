"""Platform overhead: run_experiment (Lightning + MLflow record) vs a bare PyTorch loop.

Both sides do the same work: load the same Fashion-MNIST split through the same DataModule,
build the same network, train it with Adam for the same steps, validate every epoch and test
once at the end. The platform side also writes its full MLflow record (params, per-epoch
metrics, config, checkpoint, model). A third side, "user", runs the same network as a plain
LightningModule of the user's (bench/step_logging.py) that logs its loss with `self.log` every
step (`trainer.log_every_n_steps=1`: every value reaches MLflow), through the same run_experiment.
Two more sides show what Lightning itself costs, with no sweeplab around it: "lightning" fits and
tests the platform's own module in a plain `pl.Trainer` (no logger, no checkpoint, no callbacks),
"user-lightning" the user module likewise; what a sweeplab side costs above its Lightning side is
sweeplab's share.
Each round runs the sides back to back, in alternating order (A B C, C B A, A B C, ...), in one
process, after one untimed warm-up of each (first-call costs: torch._dynamo, torch.export,
MLflow's schema).

On a shared 2-core machine one run of either side varies by ±10%, and the machine's speed
drifts over minutes. So the figure is paired: each round's platform/bare ratio compares two
neighbouring runs, and the last line is the median of those ratios. The ratio of the two
medians (which pairs runs from different rounds) is printed above it for comparison.

    python bench/overhead.py [--repeats 9] [--train-size 10000] [--epochs 2] [key=value ...]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from sweeplab.config import compose_config
from sweeplab.experiment import build_modules, run_experiment


def platform_run(cfg) -> float:
    started = time.perf_counter()
    run_experiment(cfg)
    return time.perf_counter() - started


def lightning_run(cfg) -> float:
    """The same module and data in a plain Lightning Trainer: no logger, checkpoint or callbacks."""
    import pytorch_lightning as pl

    started = time.perf_counter()
    pl.seed_everything(cfg.seed, verbose=False)
    torch.utils.deterministic.fill_uninitialized_memory = False   # as run_experiment sets it
    datamodule, module = build_modules(cfg)
    trainer = pl.Trainer(max_epochs=cfg.trainer.max_epochs, accelerator="cpu", devices=1, deterministic=True,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         log_every_n_steps=cfg.trainer.log_every_n_steps)
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule, verbose=False)
    return time.perf_counter() - started


def bare_run(cfg) -> float:
    """The same training, as a plain loop: no Lightning, no metrics library, no logging."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)   # as trainer.deterministic=true, and
    torch.utils.deterministic.fill_uninitialized_memory = False   # as run_experiment sets it
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    net = instantiate(cfg.model).net
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.model.label_smoothing)
    for _ in range(cfg.trainer.max_epochs):
        net.train()
        for x, y in datamodule.train_dataloader():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
        evaluate(net, datamodule.val_dataloader(), loss_fn)
    evaluate(net, datamodule.test_dataloader(), loss_fn)
    return time.perf_counter() - started


@torch.no_grad()
def evaluate(net, loader, loss_fn) -> tuple[float, float]:
    net.eval()
    total, correct, loss = 0, 0, 0.0
    for x, y in loader:
        logits = net(x)
        loss += loss_fn(logits, y).item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        total += len(y)
    return loss / total, correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))
    cfg = compose_config([
        "experiment=fashion_cnn", f"data.train_size={args.train_size}", "data.val_size=2000",
        "data.batch_size=64", f"trainer.max_epochs={args.epochs}", "trainer=cpu",
        "trainer.enable_progress_bar=false", f"tracking.uri=sqlite:///{store}/mlflow.db",
        f"tracking.artifact_location={store}/artifacts", "tracking.experiment=bench_overhead",
        *args.overrides])
    # The same network in a plain LightningModule of the user's (bench/step_logging.py, on sys.path as
    # this script's folder), logging its loss every step, all of which reach MLflow.
    user_cfg = copy.deepcopy(cfg)
    user_cfg.model._target_ = "step_logging.StepLogging"
    user_cfg.monitor.metric = "val_acc"
    user_cfg.trainer.log_every_n_steps = 1
    print(f"torch threads: {torch.get_num_threads()}; {args.train_size} train images, "
          f"{args.epochs} epochs, batch 64; warm-up of each side first", flush=True)
    sides = [("bare", lambda: bare_run(cfg)), ("platform", lambda: platform_run(cfg)),
             ("user", lambda: platform_run(user_cfg)), ("lightning", lambda: lightning_run(cfg)),
             ("user-lightning", lambda: lightning_run(user_cfg))]
    for _, run in sides:
        run()
    timings = {name: [] for name, _ in sides}
    for i in range(args.repeats):
        for name, run in (sides if i % 2 == 0 else sides[::-1]):
            seconds = run()
            timings[name].append(seconds)
            print(f"  round {i + 1} {name:<14} {seconds:7.2f} s", flush=True)
    bare, platform = (statistics.median(timings[k]) for k in ("bare", "platform"))
    paired = statistics.median(p / b for p, b in zip(timings["platform"], timings["bare"]))
    print(f"median bare {bare:.2f} s, platform {platform:.2f} s (whole run_experiment: "
          "data, MLflow run, fit, test, checkpoint, model)")
    print(f"ratio of medians {platform / bare:.3f}; per-round ratios: "
          f"{' '.join(f'{p / b:.3f}' for p, b in zip(timings['platform'], timings['bare']))}")
    user = statistics.median(u / b for u, b in zip(timings["user"], timings["bare"]))
    print(f"user module logging every step (bench/step_logging.py) / bare {user:.3f} (median of per-round "
          f"ratios: {' '.join(f'{u / b:.3f}' for u, b in zip(timings['user'], timings['bare']))})")
    for name, label in (("lightning", "sweeplab's module in a plain Lightning Trainer"),
                        ("user-lightning", "the user module in a plain Lightning Trainer")):
        ratio = statistics.median(x / b for x, b in zip(timings[name], timings["bare"]))
        print(f"{label} / bare {ratio:.3f}")
    print(f"platform/bare {paired:.3f} (median of per-round ratios)")


if __name__ == "__main__":
    sys.exit(main())
