"""Transfer learning end to end (the `finetune` group, model=vgg): the installed command, a real SQLite MLflow
store in a tmp dir, digits + trainer=smoke. A test callback (tests/transfer_code/weight_snapshots.py, on
PYTHONPATH) saves the module's weights when training starts and after each epoch."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from conftest import run_cli, runs_in, store_uri

CODE = Path(__file__).parent / "transfer_code"
ENV = {"PYTHONPATH": str(CODE)}
DIGITS = ["experiment=digits_cnn", "trainer=smoke", "tracking.system_metrics_interval=null"]
NAME = "digits_source"   # the registered model


@dataclass
class Source:
    cwd: Path
    run_id: str
    checkpoint: Path
    weights: dict[str, torch.Tensor]


@dataclass
class Run:
    run_id: str
    stdout: str
    snapshots: dict[str, dict[str, torch.Tensor]]   # start, epoch0, ... (read at once: a reproduction overwrites them)
    optimizer: list[dict]


def train(cwd: Path, *args: str, snapshots: Path | None = None) -> Run:
    extra = ["+callbacks.snap._target_=weight_snapshots.SaveWeights", f"+callbacks.snap.folder={snapshots}"]
    done = run_cli("train", *args, *(extra if snapshots else []), cwd=cwd, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = re.search(r"MLflow run (\w+) \(FINISHED\)", done.stdout).group(1)
    return Run(run_id, done.stdout, *_read_snapshots(snapshots))


def _read_snapshots(folder: Path | None) -> tuple[dict, list]:
    if folder is None:
        return {}, []
    saved = {path.stem: torch.load(path, weights_only=True) for path in folder.glob("*.pt")}
    return saved, json.loads((folder / "optimizer.json").read_text())


def part(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if k.startswith(prefix)}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def tags(cwd: Path, run_id: str) -> dict[str, str]:
    return MlflowClient(store_uri(cwd)).get_run(run_id).data.tags


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A digits_cnn smoke run (checkpoint and model logged), registered as digits_source@champion (version 1)."""
    import mlflow

    from sweeplab.tracking.registry import register

    before = mlflow.get_tracking_uri()
    cwd = tmp_path_factory.mktemp("transfer")
    run = train(cwd, *DIGITS)
    client = MlflowClient(store_uri(cwd))
    checkpoint = Path(client.download_artifacts(run.run_id, "checkpoints/best.ckpt", str(cwd)))
    assert register(client, run.run_id, NAME) == f"{NAME}/1"
    yield Source(cwd, run.run_id, checkpoint, torch.load(checkpoint, weights_only=True)["state_dict"])
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="module")
def from_alias(source):
    """From models:/NAME@champion, the backbone frozen for epoch 0, unfrozen at 1, at a tenth of the lr."""
    return train(source.cwd, *DIGITS, f"finetune.init_from=models:/{NAME}@champion", "finetune.freeze=[backbone.*]",
                 "finetune.unfreeze_at_epoch=1", "finetune.backbone_lr_scale=0.1", "tracking.log_model=false",
                 snapshots=source.cwd / "from_alias")


@pytest.fixture(scope="module")
def from_run_id(source):
    """From the run id, the head afresh; its model is logged (the alias is moved to it later)."""
    return train(source.cwd, *DIGITS, f"finetune.init_from={source.run_id}", "finetune.init_head=false",
                 "trainer.max_epochs=1", snapshots=source.cwd / "from_run_id")


def test_init_from_an_alias_starts_from_the_registered_weights(source, from_alias):
    assert same(from_alias.snapshots["start"], source.weights)
    assert f"init_from: {len(source.weights)} tensors from models:/{NAME}/1" in from_alias.stdout


def test_the_frozen_backbone_stays_fixed_until_unfreeze_at_epoch(from_alias):
    start, epoch0, epoch1 = (from_alias.snapshots[k] for k in ("start", "epoch0", "epoch1"))
    assert same(part(epoch0, "net.0."), part(start, "net.0."))        # weights and batch-norm statistics
    assert not same(part(epoch0, "net.2."), part(start, "net.2."))    # the head trained
    conv = "net.0.layers.0.weight"
    assert not torch.equal(epoch1[conv], epoch0[conv])
    _, backbone = from_alias.optimizer
    assert f"froze {len(backbone['params'])} tensors (backbone.*) until epoch 1" in from_alias.stdout


def test_backbone_lr_scale_makes_a_backbone_parameter_group(source, from_alias):
    head, backbone = from_alias.optimizer
    assert head["lr"] == pytest.approx(1e-3) and backbone["lr"] == pytest.approx(1e-4)
    assert head["params"] == ["net.2.weight", "net.2.bias"]
    assert backbone["params"] and all(name.startswith("net.0.") for name in backbone["params"])
    # Each group's rate reaches MLflow and the summary: train/lr (the first group), train/lr/backbone.
    recorded = MlflowClient(store_uri(source.cwd)).get_run(from_alias.run_id).data.metrics
    assert recorded["train/lr"] == pytest.approx(1e-3) and recorded["train/lr/backbone"] == pytest.approx(1e-4)
    assert re.search(r"^train/lr/backbone\s+0\.0001$", from_alias.stdout, re.M), from_alias.stdout


def test_the_run_records_where_its_weights_came_from(source, from_alias, from_run_id):
    alias = tags(source.cwd, from_alias.run_id)
    assert alias["sweeplab.init_from"] == f"models:/{NAME}@champion"
    assert alias["sweeplab.init_from.resolved"] == f"models:/{NAME}/1"
    assert alias["sweeplab.init_from.model_version"] == f"{NAME}/1"
    assert alias["sweeplab.init_from.run_id"] == source.run_id
    by_id = tags(source.cwd, from_run_id.run_id)
    assert by_id["sweeplab.init_from"] == source.run_id
    assert by_id["sweeplab.init_from.resolved"] == f"runs:/{source.run_id}/checkpoints/best.ckpt"
    assert by_id["sweeplab.init_from.run_id"] == source.run_id
    # The same weights (the model holds the best checkpoint's), the same digest.
    assert alias["sweeplab.init_from.digest"] == by_id["sweeplab.init_from.digest"]


def test_init_from_a_run_id_with_the_head_afresh(source, from_run_id):
    start = from_run_id.snapshots["start"]
    assert same(part(start, "net.0."), part(source.weights, "net.0."))
    assert not torch.equal(start["net.2.weight"], source.weights["net.2.weight"])
    assert "head afresh" in from_run_id.stdout


def test_weights_that_do_not_fit_exit_2_naming_keys_and_shapes_with_no_run(source, tmp_path):
    wrong = dict(source.weights)
    wrong["net.0.layers.0.weight"] = torch.zeros(8, 1, 3, 3)
    wrong["net.2.weight"] = torch.zeros(5, 288)
    path = tmp_path / "wrong.pt"
    torch.save(wrong, path)
    before = len(runs_in(source.cwd, "digits_cnn"))

    done = run_cli("train", *DIGITS, f"finetune.init_from={path}", cwd=source.cwd, env=ENV)

    assert done.returncode == 2, done.stderr[-3000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"sweeplab: error: finetune.init_from={path}: the weights do not fit Classifier")
    assert "net.0.layers.0.weight: [8, 1, 3, 3] in the source, [16, 1, 3, 3] in the model" in line
    assert "net.2.weight: [5, 288] in the source, [10, 288] in the model" in line
    assert len(runs_in(source.cwd, "digits_cnn")) == before


def test_vgg_trains_from_a_weights_path(source, tmp_path):
    from sweeplab.models.vgg import VGG

    torch.manual_seed(7)
    path = tmp_path / "vgg.pt"
    torch.save(VGG(1, [[8, 8], [16]]).state_dict(), path)

    run = train(source.cwd, *DIGITS, "model=vgg", "~model.backbone.channels", "model.backbone.blocks=[[8,8],[16]]",
                f"model.backbone.weights_path={path}", "finetune.freeze=[backbone.*]", "trainer.max_epochs=1",
                "tracking.log_model=false", snapshots=tmp_path / "vgg")

    saved = {f"net.0.{k}": v for k, v in torch.load(path, weights_only=True).items()}
    assert same(part(run.snapshots["start"], "net.0."), saved)     # it starts from the file's weights
    assert same(part(run.snapshots["epoch0"], "net.0."), saved)    # frozen, they stay
    assert not same(part(run.snapshots["epoch0"], "net.2."), part(run.snapshots["start"], "net.2."))  # the head trains


def test_reproduce_loads_the_pinned_version_after_the_alias_moved(source, from_alias, from_run_id):
    from sweeplab.tracking.registry import register

    # champion now names other weights (version 2, from the run fine-tuned by run id).
    assert register(MlflowClient(store_uri(source.cwd)), from_run_id.run_id, NAME) == f"{NAME}/2"

    done = run_cli("reproduce", from_alias.run_id, "--check", cwd=source.cwd, env=ENV)

    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    new_id = re.search(r"new run (\w+)", done.stdout).group(1)
    new = tags(source.cwd, new_id)
    assert new["sweeplab.reproduces"] == from_alias.run_id
    assert new["sweeplab.init_from.resolved"] == f"models:/{NAME}/1"
    assert new["sweeplab.init_from.digest"] == tags(source.cwd, from_alias.run_id)["sweeplab.init_from.digest"]
    start = torch.load(source.cwd / "from_alias" / "start.pt", weights_only=True)
    assert same(start, source.weights)


# The other forms and the checks, through the function run_experiment calls (no process of its own).

def _module(*overrides: str):
    from hydra.utils import instantiate

    from sweeplab.config import compose_config

    cfg = compose_config([*DIGITS, *overrides])
    return cfg, instantiate(cfg.model)


@pytest.mark.parametrize("form", ["runs:/{id}/model", "runs:/{id}/checkpoints/best.ckpt", "{checkpoint}",
                                  "{module_pt}", "{net_pt}"])
def test_every_init_from_form_loads_the_same_weights(source, form, tmp_path):
    from sweeplab.transfer.prepare import prepare_module

    torch.save(source.weights, tmp_path / "module.pt")
    torch.save({k[len("net."):]: v for k, v in source.weights.items()}, tmp_path / "net.pt")
    written = form.format(id=source.run_id, checkpoint=source.checkpoint, module_pt=tmp_path / "module.pt",
                          net_pt=tmp_path / "net.pt")
    cfg, module = _module(f"finetune.init_from={written}")

    recorded = prepare_module(cfg, module, store_uri(source.cwd)).tags

    assert same(module.state_dict(), source.weights)
    assert recorded["sweeplab.init_from"] == written
    if written.startswith("runs:/"):
        assert recorded["sweeplab.init_from.run_id"] == source.run_id
    if form == "runs:/{id}/model":
        assert recorded["sweeplab.init_from.resolved"].startswith("models:/m-")


@pytest.mark.parametrize("written, message", [
    ("yesterday", "give a run id (32 hex digits)"),
    ("/nowhere/weights.pt", "no such file"),
    ("0123456789abcdef0123456789abcdef", "no such run"),
    ("models:/no_such_model@champion", "not found in"),
])
def test_an_unusable_init_from_says_why(source, written, message):
    from sweeplab.errors import ConfigError
    from sweeplab.transfer.prepare import prepare_module

    cfg, module = _module(f"finetune.init_from={written}")
    with pytest.raises(ConfigError, match=re.escape(message)):
        prepare_module(cfg, module, store_uri(source.cwd))


def test_freeze_patterns_and_lr_scale_are_checked_against_the_module(monkeypatch, tmp_path):
    from sweeplab.errors import ConfigError
    from sweeplab.transfer.prepare import prepare_module

    cfg, module = _module("finetune.freeze=[encoder.*]")
    with pytest.raises(ConfigError, match=r"'encoder\.\*' matches no parameter of Classifier; .*net\.0\.layers"):
        prepare_module(cfg, module, "sqlite:///unused.db")
    # A plain LightningModule (tests/user_code): freezing and loading by name work, the lr split does not.
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "user_code"))
    from my_lightning.model import DigitsMLP

    user = DigitsMLP()
    torch.save(DigitsMLP().state_dict(), tmp_path / "mlp.pt")
    cfg, _ = _module(f"finetune.init_from={tmp_path / 'mlp.pt'}", "finetune.freeze=[layers.0.*]")
    callbacks = prepare_module(cfg, user, "sqlite:///unused.db").callbacks
    assert same(user.state_dict(), torch.load(tmp_path / "mlp.pt", weights_only=True))
    assert callbacks[0].names == ["layers.0.weight", "layers.0.bias"]
    cfg, _ = _module("finetune.backbone_lr_scale=0.1")
    with pytest.raises(ConfigError, match="DigitsMLP makes its own optimizer"):
        prepare_module(cfg, user, "sqlite:///unused.db")


def test_one_cycle_keeps_the_backbones_lr_scale():
    from sweeplab.models.schedules import one_cycle

    _, module = _module()
    module.backbone_lr_scale = 0.1
    optimizer = torch.optim.SGD(module._parameter_groups(), lr=0.01)
    optimizer.param_groups[1]["lr"] *= module.backbone_lr_scale
    scheduler = one_cycle(optimizer, total_steps=10, max_lr=0.1)
    assert [g["max_lr"] for g in scheduler.optimizer.param_groups] == pytest.approx([0.1, 0.01])


def test_an_importable_network_serves_as_backbone_with_its_head_dropped(monkeypatch, tmp_path):
    from hydra.utils import instantiate

    monkeypatch.syspath_prepend(str(CODE))
    from tiny_backbones import tiny_vgg

    torch.manual_seed(3)
    full = tiny_vgg(num_classes=1000)
    torch.save(full.state_dict(), tmp_path / "tiny.pt")
    _, model = _module("~model.backbone", "+model.backbone._target_=sweeplab.models.headless.Headless",
                       "+model.backbone.network._target_=tiny_backbones.tiny_vgg",
                       "+model.backbone.head_attribute=classifier",
                       f"+model.backbone.weights_path={tmp_path / 'tiny.pt'}")

    assert model.backbone.out_features == 8 * 2 * 2          # the head's first Linear took these in
    assert isinstance(model.backbone.network.classifier, torch.nn.Identity)
    assert torch.equal(model.backbone.network.features[0].weight, full.features[0].weight)
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(Exception, match="head_attribute=fc: TinyVGG has no such module; its children are features"):
        instantiate({"_target_": "sweeplab.models.headless.Headless",
                     "network": {"_target_": "tiny_backbones.tiny_vgg"}, "head_attribute": "fc"})


def test_backbone_lr_scale_is_a_sweepable_float():
    import optuna

    from sweeplab.config import compose_with_choices
    from sweeplab.sweep.settings import read_settings
    from sweeplab.sweep.worker.loop import trial_config

    overrides = ["sweep=digits_cnn", "trainer=smoke", "sweep.params.finetune.backbone_lr_scale=interval(0.01, 1.0)"]
    settings = read_settings(*compose_with_choices(overrides))
    trial = optuna.create_study(sampler=settings.sampler()).ask()

    cfg = trial_config(overrides, [], settings, settings.space.suggest(trial))

    assert cfg.finetune.backbone_lr_scale == trial.params["finetune.backbone_lr_scale"]
    assert 0.01 <= cfg.finetune.backbone_lr_scale <= 1.0


def test_fashion_mnist_keeps_the_classes_asked_for_renumbered(fashion_available):
    from conftest import FASHION_DIR
    from sweeplab.data.fashion_mnist import FashionMNISTDataModule

    data = FashionMNISTDataModule(str(FASHION_DIR), classes=[5, 6, 7, 8, 9], num_classes=5, train_size=500,
                                  val_size=1000)
    data.setup("fit")
    train, test = data._splits["train"].tensors[1], data._splits["test"].tensors[1]
    assert len(train) == 500 and sorted(set(train.tolist())) == [0, 1, 2, 3, 4]
    assert torch.bincount(test).tolist() == [1000] * 5   # the test file's sandals..ankle boots, as 0..4
    with pytest.raises(ValueError, match="data.num_classes=10: data.classes keeps 2 classes"):
        FashionMNISTDataModule(str(FASHION_DIR), classes=[5, 6], num_classes=10)


def test_unfreeze_at_epoch_past_the_last_epoch_is_refused():
    from sweeplab.config import compose_config
    from sweeplab.errors import ConfigError
    from sweeplab.transfer.settings import read

    base = ["experiment=digits_cnn", "trainer.max_epochs=3", "finetune.freeze=[net.0.*]"]
    assert read(compose_config([*base, "finetune.unfreeze_at_epoch=2"])).unfreeze_at_epoch == 2   # the last epoch
    with pytest.raises(ConfigError, match=r"finetune.unfreeze_at_epoch=3: training ends after trainer.max_epochs=3 "
                                          r"epochs \(0 to 2\), so nothing would be unfrozen"):
        read(compose_config([*base, "finetune.unfreeze_at_epoch=3"]))
