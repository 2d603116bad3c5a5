"""`sweeplab explain` and `tracking.log_explanations` end to end: the installed command, real MLflow on SQLite,
and every logged table checked against Captum's attributions recomputed here from the run's record."""

from __future__ import annotations

import csv
import html
import json
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from mlflow import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from conftest import run_cli, runs_in, store_uri

# Smallest settings that still train: trainer=smoke, no exported model (the checkpoint is what explain loads).
QUICK = ["trainer=smoke", "tracking.log_model=false", "tracking.system_metrics_interval=null"]
# The image run is explained by `sweeplab explain` from its record; the text and CO2 runs explain themselves
# at their end (tracking.log_explanations=true), so both paths are checked against Captum, in few processes.
TRAIN = {
    "digits_cnn": ["experiment=digits_cnn"],
    "text_lstm": ["experiment=text_lstm", "data.max_len=16", "model.backbone.hidden_size=16",
                  "model.backbone.embedding_dim=16", "tracking.log_explanations=true"],
    "co2_lstm": ["experiment=co2_lstm", "data.window=26", "tracking.log_explanations=true"],
}
EXAMPLES = {"digits_cnn": 5, "text_lstm": 8, "co2_lstm": 8}   # 8: what tracking.log_explanations=true explains
METHODS = ("integrated_gradients", "saliency", "gradient_shap", "lime", "kernel_shap")
PERTURBED = ("lime", "kernel_shap")
TOLERANCE = {"rel": 1e-4, "abs": 1e-7}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: (folder, run id, train process, explain process or None)}; the image run is explained as soon
    as it is trained, beside the other trainings."""
    folders = {name: tmp_path_factory.mktemp(name) for name in TRAIN}

    def job(name: str):
        trained = run_cli("train", *TRAIN[name], *QUICK, cwd=folders[name])
        assert trained.returncode == 0, f"{name}: {trained.stderr[-3000:]}"
        run_id = runs_in(folders[name], name)[0].info.run_id
        if "tracking.log_explanations=true" in TRAIN[name]:
            return folders[name], run_id, trained, None
        assert not _files(folders[name], run_id)   # a run that did not ask has none until `explain`
        explained = run_cli("explain", run_id, "--examples", str(EXAMPLES[name]), cwd=folders[name])
        return folders[name], run_id, trained, explained

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(TRAIN, pool.map(job, TRAIN)))


def _files(cwd: Path, run_id: str) -> dict[str, bytes]:
    """The run's explanations/ artifacts, name -> content."""
    client = MlflowClient(store_uri(cwd))
    with tempfile.TemporaryDirectory() as folder:
        if not client.list_artifacts(run_id, "explanations"):
            return {}
        local = Path(client.download_artifacts(run_id, "explanations", folder))
        return {path.name: path.read_bytes() for path in local.iterdir()}


def _explained(runs, name: str):
    cwd, run_id, trained, explained = runs[name]
    printed = explained or trained
    assert printed.returncode == 0, f"{name}: {printed.stderr[-3000:]}"
    if explained:
        assert f"explained run {run_id}" in explained.stdout
    tags = MlflowClient(store_uri(cwd)).get_run(run_id).data.tags
    assert tags["sweeplab.explanations"].startswith(f"{EXAMPLES[name]} test examples: {', '.join(METHODS)};"), tags
    return cwd, run_id, _files(cwd, run_id)


def _rebuild(cwd: Path, run_id: str):
    """The run's config, its data module (set up) and its trained module, from config.yaml and the checkpoint."""
    client = MlflowClient(store_uri(cwd))
    with tempfile.TemporaryDirectory() as folder:
        cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", folder))
        state = torch.load(client.download_artifacts(run_id, "checkpoints/best.ckpt", folder), weights_only=False)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = instantiate(cfg.model)
    module.load_state_dict(state["state_dict"])
    return cfg, datamodule, module.eval()


def _first_test(datamodule, n: int):
    x, y = zip(*[(b[0], b[1]) for b in datamodule.test_dataloader()])
    return torch.cat(x)[:n], torch.cat(y)[:n]


def _training(datamodule, seed: int, background: int = 32):
    """The mean training input, and the first `background` inputs served after seeding (GradientShap's)."""
    torch.manual_seed(seed)
    inputs = torch.cat([b[0] for b in datamodule.train_dataloader()])
    return inputs.double().mean(0, keepdim=True).float(), inputs[:background]


def _dense_expected(net, x, target, mean, background, seed: int, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every method's attributions; Lime's and KernelShap's features are `mask`'s groups (1 x ... ids)."""
    from captum.attr import GradientShap, IntegratedGradients, Saliency

    maps = {"integrated_gradients": IntegratedGradients(net).attribute(x, baselines=mean, target=target, n_steps=50),
            "saliency": Saliency(net).attribute(x.clone().requires_grad_(), target=target)}
    torch.manual_seed(seed)   # GradientShap draws baselines with torch, points on the path with numpy
    np.random.seed(seed)
    maps["gradient_shap"] = GradientShap(net).attribute(x, baselines=background, target=target, n_samples=20)
    sizes = torch.bincount(mask.flatten())[mask]   # a feature's weight is spread evenly over its elements
    for method in PERTURBED:
        torch.manual_seed(seed)
        np.random.seed(seed)
        maps[method] = torch.cat([_perturbed(method, net, x[i:i + 1], mean, mask, _one(target, i))
                                  for i in range(len(x))]) / sizes
    return maps


def _one(target, i: int):
    return target[i:i + 1] if isinstance(target, torch.Tensor) else target


def _perturbed(method: str, forward, x, baseline, mask, target, args=None) -> torch.Tensor:
    """Captum's Lime or KernelShap on one example: 200 perturbed inputs, 100 per forward pass."""
    from captum.attr import KernelShap, Lime

    algorithm = {"lime": Lime, "kernel_shap": KernelShap}[method](forward)
    return algorithm.attribute(x, baselines=baseline, target=target, feature_mask=mask, n_samples=200,
                               perturbations_per_eval=100, additional_forward_args=args)


def _word_weights(method: str, net, embedding, ids, target, seed: int) -> torch.Tensor:
    """Lime's or KernelShap's weight per word (0 at padding): a text at a time, its words' embeddings the
    features (baseline: the pad id 0's), its padding left as it is."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    weights = torch.zeros(ids.shape)
    with torch.no_grad():
        vectors, pads = embedding(ids), embedding(torch.zeros_like(ids))
    for i, row in enumerate(ids):
        positions = (row != 0).nonzero().flatten()

        def forward(words, i=i, positions=positions):
            full = vectors[i:i + 1].expand(len(words), -1, -1).clone()
            full[:, positions] = words
            handle = embedding.register_forward_hook(lambda layer, args, output: full)
            try:
                return net(ids[i:i + 1].expand(len(words), -1))
            finally:
                handle.remove()

        mask = torch.arange(len(positions))[None, :, None].expand(1, len(positions), vectors.shape[2])
        found = _perturbed(method, forward, vectors[i:i + 1, positions], pads[i:i + 1, positions], mask,
                           target[i:i + 1])
        weights[i, positions] = found[0, :, 0]   # Captum repeats a word's weight on each of its dimensions
    return weights


def test_a_bogus_run_id_exits_2_at_once_without_importing_torch(tmp_path):
    (tmp_path / "mlruns").mkdir()
    MlflowClient(store_uri(tmp_path)).search_experiments()   # an empty store: no run has that id
    done = run_cli("explain", "0" * 32, cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    told = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("import time:")]
    assert done.returncode == 2 and len(told) == 1 and "no such run" in told[0], done.stderr[-2000:]
    assert imported and not imported & {"torch", "mlflow", "captum"}


def test_log_explanations_on_a_train_run_logs_them_at_its_end(runs):
    for name, kind, picture in (("text_lstm", "tokens", "words.html"), ("co2_lstm", "steps", "steps.png")):
        _, run_id, files = _explained(runs, name)
        assert runs[name][3] is None   # no `sweeplab explain`: the train run did it
        assert {picture, "mean_abs_attribution.csv", "mean_abs_attribution.json"} == set(files), name
        document = json.loads(files["mean_abs_attribution.json"])
        assert document["run_id"] == run_id and document["examples"] == 8 and document["kind"] == kind


def test_image_run_grid_and_pixel_tables_are_captums(runs):
    cwd, run_id, files = _explained(runs, "digits_cnn")
    tables = {f"mean_abs_attribution_{m}.csv" for m in METHODS}
    assert {"images.png", "mean_abs_attribution.json", *tables} == set(files)
    document = json.loads(files["mean_abs_attribution.json"])
    assert document["examples"] == 5 and document["kind"] == "images"
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "grid.png").write_bytes(files["images.png"])
        with Image.open(Path(folder) / "grid.png") as image:
            assert image.format == "PNG" and image.width > 500 and image.height > 400
        tables = {}   # method -> its H x W table
        for method in METHODS:
            (Path(folder) / method).write_bytes(files[f"mean_abs_attribution_{method}.csv"])
            tables[method] = np.loadtxt(Path(folder) / method, delimiter=",")

    cfg, datamodule, module = _rebuild(cwd, run_id)
    x, y = _first_test(datamodule, 5)
    net = module.net
    target = net(x).argmax(1)
    assert [label["predicted"] for label in document["labels"]] == [str(int(t)) for t in target]
    assert [label["true"] for label in document["labels"]] == [str(int(t)) for t in y]
    mean, background = _training(datamodule, cfg.seed)
    # Lime's and KernelShap's superpixels: 2 x 2 pixel squares, 4 x 4 of them
    patches = ((torch.arange(8)[:, None] // 2) * 4 + torch.arange(8)[None, :] // 2).reshape(1, 1, 8, 8)
    expected = _dense_expected(net, x, target, mean, background, cfg.seed, patches)
    assert "2 x 2 pixel square" in document["baselines"]["lime"]
    assert "16 of them" in document["baselines"]["kernel_shap"]
    for method in METHODS:
        want = expected[method].detach().sum(1).abs().mean(0).numpy()   # channels summed, |.| averaged
        assert tables[method].shape == (8, 8), method     # one value per pixel, as the 8 x 8 image
        assert tables[method] == pytest.approx(want, **TOLERANCE), method
        assert np.array(document["mean_abs_attribution"][method]) == pytest.approx(want, **TOLERANCE), method


def test_text_run_page_colours_each_word_and_the_word_table_is_captums(runs):
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    cwd, run_id, files = _explained(runs, "text_lstm")
    page = files["words.html"].decode("utf-8")
    cfg, datamodule, module = _rebuild(cwd, run_id)
    ids, _ = _first_test(datamodule, EXAMPLES["text_lstm"])
    words = datamodule.decode(ids)
    # The first test sentence, word by word, each in a coloured mark.
    marked = re.findall(r'<mark style="background-color: (hsl\([^)]*\))[^>]*><font color="black"> ([^<]*?)\s*</font>',
                        page)
    shown = [word for _, word in marked]
    first = [html.escape(w) for w in words[0]]
    assert any(shown[i:i + len(first)] == first for i in range(len(shown))), (first, shown[:40])
    assert len({colour for colour, _ in marked}) > 3   # shades, not one colour
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "<link" not in page   # self-contained
    for shown_name in ("Integrated Gradients", "Saliency", "GradientShap", "Lime", "KernelShap"):
        # a line per example, and a column of the top words' table
        assert page.count(f"<td>{shown_name}</td>") == len(words) and f"<th>{shown_name}</th>" in page, shown_name

    net = module.net
    embedding = net[0].embed
    target = net(ids).argmax(1)
    maps = {"integrated_gradients": LayerIntegratedGradients(net, embedding).attribute(
                ids, baselines=torch.zeros_like(ids), target=target, n_steps=50).sum(-1),
            "saliency": LayerGradientXActivation(net, embedding, multiply_by_inputs=False).attribute(
                ids, target=target).abs().sum(-1)}
    assert all(len(text) > 1 for text in words)   # KernelShap's sampler needs two features (words) or more
    for method in PERTURBED:
        maps[method] = _word_weights(method, net, embedding, ids, target, cfg.seed)
        assert torch.isfinite(maps[method]).all() and (maps[method][ids == 0] == 0).all(), method
    occurrences: dict[str, list[tuple[int, int]]] = {}
    for row, text in enumerate(words):
        for position, word in enumerate(text):
            occurrences.setdefault(word, []).append((row, position))
    rows = list(csv.DictReader(files["mean_abs_attribution.csv"].decode("utf-8").splitlines()))
    assert 10 <= len(rows) <= min(50, len(occurrences))
    assert len({r["feature"] for r in rows}) == len(rows)    # one row per word
    for method, values in maps.items():
        got = {r["feature"]: float(r[method]) for r in rows}
        want = {w: float(np.mean([abs(float(values[r, p])) for r, p in occurrences[w]])) for w in got}
        assert got == pytest.approx(want, **TOLERANCE), method
    top = sorted(occurrences, key=lambda w: -np.mean([abs(float(maps["integrated_gradients"][r, p]))
                                                      for r, p in occurrences[w]]))[:5]
    assert [r["feature"] for r in rows[:5]] == top   # the top words by Integrated Gradients, largest first
    assert all(float(r["gradient_shap"]) >= 0 for r in rows)


def test_co2_run_plots_attribution_per_input_week_and_the_step_table_is_captums(runs):
    cwd, run_id, files = _explained(runs, "co2_lstm")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "steps.png").write_bytes(files["steps.png"])
        with Image.open(Path(folder) / "steps.png") as image:
            assert image.format == "PNG" and image.width > 500
    rows = list(csv.DictReader(files["mean_abs_attribution.csv"].decode("utf-8").splitlines()))
    assert [r["feature"] for r in rows] == [f"t-{26 - i}" for i in range(26)]   # one row per input week

    cfg, datamodule, module = _rebuild(cwd, run_id)
    x, _ = _first_test(datamodule, EXAMPLES["co2_lstm"])
    mean, background = _training(datamodule, cfg.seed)
    steps = torch.arange(26).reshape(1, 26, 1).expand(1, 26, x.shape[2])   # Lime's and KernelShap's: a week each
    expected = _dense_expected(module.net, x, 0, mean, background, cfg.seed, steps)   # output 0: the next week
    for method in METHODS:
        want = expected[method].detach().sum(2).abs().mean(0).numpy()
        assert [float(r[method]) for r in rows] == pytest.approx(want.tolist(), **TOLERANCE), method
