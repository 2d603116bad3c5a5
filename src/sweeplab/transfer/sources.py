"""finetune.init_from: find the weights it names (an MLflow run or model, or a local file) and pin them down.

Every form resolves to a `Source` whose `resolved` text names exactly those weights for good: a run's
checkpoint by run id, a registered model by version (an alias may move later), a logged model by its id,
a file by absolute path. `sweeplab reproduce` loads `resolved` again. Nothing is downloaded from the internet:
MLflow artifacts come from the run's store.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from sweeplab.errors import ConfigError
from sweeplab.models.weights import read_state_dict

CHECKPOINT = "checkpoints/best.ckpt"   # what every run logs (tracking.log_checkpoint), see tracking/recorder.py
FORMS = ("a run id (32 hex digits), runs:/RUN_ID/model (or runs:/RUN_ID/PATH of a logged .ckpt/.pt file), "
         "models:/NAME@ALIAS, models:/NAME/VERSION, or a local .ckpt (Lightning checkpoint) / .pt / .pth "
         "(state dict) file")
RUN_ID = re.compile(r"[0-9a-f]{32}")
FILE_SUFFIXES = (".ckpt", ".pt", ".pth")


@dataclass(frozen=True)
class Source:
    """Weights found for init_from, with what pins them down (recorded as the run's tags)."""

    resolved: str                      # runs:/RUN/PATH, models:/NAME/VERSION, models:/m-ID, or an absolute path
    weights: dict[str, torch.Tensor]
    of_net: bool                       # keyed as the exported network `net` (a logged model), not the LightningModule
    run_id: str | None = None          # the MLflow run that made them
    model_version: str | None = None   # NAME/VERSION, when they are a registered model's


def fetch(written: str, uri: str) -> Source:
    """The weights `written` names, read from the MLflow store at `uri` or from disk."""
    key = f"finetune.init_from={written}"
    try:
        if RUN_ID.fullmatch(written):
            return _from_run(_client(uri), written, None, key)
        if written.startswith("runs:/"):
            run_id, _, path = written[len("runs:/"):].strip("/").partition("/")
            return _from_run(_client(uri), run_id, path or None, key)
        if written.startswith("models:/"):
            return _from_model_uri(_client(uri), written, key)
    except ConfigError as e:
        if str(e).startswith(key):
            raise
        raise ConfigError(f"{key}: {e}") from None   # lookup's errors (no such run) name the setting too
    path = Path(written).expanduser()
    if path.suffix in FILE_SUFFIXES and path.is_file():
        return _from_file(path.resolve(), key)
    if path.suffix in FILE_SUFFIXES:
        raise ConfigError(f"{key}: no such file")
    raise ConfigError(f"{key}: give {FORMS}")


def _client(uri: str):
    from sweeplab.tracking import store

    return store.open_client(uri)


def _from_run(client, run_id: str, path: str | None, key: str) -> Source:
    """A run's checkpoint (the default), a logged .ckpt/.pt file, or one of its logged models by name.
    A sweep's run id means its best trial, a cross-validation's its best fold (as for `sweeplab register`)."""
    from sweeplab.tracking import lookup

    run = lookup.get_run(client, run_id)
    if lookup.is_sweep(run):
        run = lookup.training_run(client, run_id)
    run = lookup.model_run(client, run)
    run_id = run.info.run_id
    if path is None:
        path = CHECKPOINT if _has_artifact(client, run_id, CHECKPOINT) else "model"
    if path.endswith(FILE_SUFFIXES):
        with _downloaded(f"runs:/{run_id}/{path}", client.tracking_uri, key) as local:
            source = _from_file(local, key)
        return Source(f"runs:/{run_id}/{path}", source.weights, source.of_net, run_id=run_id)
    named = [output.model_id for output in (run.outputs.model_outputs if run.outputs else [])
             if client.get_logged_model(output.model_id).name == path]
    if not named:
        raise ConfigError(f"{key}: run {run_id} has neither {CHECKPOINT} nor a logged model named {path!r} "
                          "(train it with tracking.log_checkpoint=true or tracking.log_model=true)")
    return Source(f"models:/{named[-1]}", _model_weights(f"models:/{named[-1]}", client.tracking_uri, key),
                  of_net=True, run_id=run_id)


def _from_model_uri(client, written: str, key: str) -> Source:
    """models:/NAME@ALIAS and models:/NAME/VERSION pin to the version; models:/m-ID is a logged model."""
    from mlflow.exceptions import MlflowException

    rest = written[len("models:/"):].strip("/")
    name, at, alias = rest.partition("@")
    try:
        if at:
            version = client.get_model_version_by_alias(name, alias)
        elif "/" in rest:
            name, _, number = rest.partition("/")
            if not number.isdigit():
                raise ConfigError(f"{key}: the version must be a number (or use models:/NAME@ALIAS)")
            version = client.get_model_version(name, number)
        else:
            model = client.get_logged_model(rest)
            return Source(f"models:/{model.model_id}", _model_weights(f"models:/{model.model_id}",
                                                                       client.tracking_uri, key),
                          of_net=True, run_id=model.source_run_id)
    except MlflowException as e:
        raise ConfigError(f"{key}: not found in {client.tracking_uri} ({str(e).splitlines()[0]})") from None
    pinned = f"models:/{name}/{version.version}"
    return Source(pinned, _model_weights(pinned, client.tracking_uri, key), of_net=True,
                  run_id=version.run_id, model_version=f"{name}/{version.version}")


def _from_file(path: Path, key: str) -> Source:
    """A Lightning checkpoint (.ckpt: its state_dict, the LightningModule's) or a state dict (.pt, .pth)."""
    if path.suffix != ".ckpt":
        try:
            weights = read_state_dict(path, "finetune.init_from")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        # A state dict of sweeplab's exported network (module.net) has no `net.` prefix: it loads into `net`.
        return Source(str(path), weights, of_net=not any(k.startswith("net.") for k in weights))
    try:
        # A checkpoint sweeplab or Lightning wrote holds tensors and plain values: no code is unpickled.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"{key}: not a Lightning checkpoint torch.load can read ({str(e).splitlines()[0]})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"{key}: not a Lightning checkpoint (it has no state_dict); save a state dict as .pt instead")
    return Source(str(path), checkpoint["state_dict"], of_net=False)


def _model_weights(model_uri: str, uri: str, key: str) -> dict[str, torch.Tensor]:
    """The state dict of an MLflow PyTorch model (sweeplab logs a run's `net`, see tracking/model_export.py)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    mlflow.set_tracking_uri(uri)   # models:/ URIs resolve against the current tracking store (its registry)
    try:
        flavors = get_model_info(model_uri).flavors
        if "pytorch" not in flavors:
            # The raw-text model of a pretrained encoder is a python_function model of its own (no torch module).
            raise ConfigError(f"{key}: {model_uri} is not a PyTorch model (its flavors: {', '.join(sorted(flavors))}); "
                              "start from the run's checkpoint instead (train it with tracking.log_checkpoint=true)")
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except MlflowException as e:
        raise ConfigError(f"{key}: {model_uri} cannot be loaded ({str(e).splitlines()[0]})") from None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{key}: {model_uri} is a {type(model).__name__}, not a PyTorch module")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _has_artifact(client, run_id: str, path: str) -> bool:
    folder = path.rpartition("/")[0]
    return any(a.path == path for a in client.list_artifacts(run_id, folder))


@contextmanager
def _downloaded(artifact_uri: str, uri: str, key: str) -> Iterator[Path]:
    """The artifact as a local file, in a folder removed afterwards."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from sweeplab.tracking.lookup import no_progress_bar

    with tempfile.TemporaryDirectory(prefix="sweeplab-init-") as folder, no_progress_bar():
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=folder, tracking_uri=uri)
        except (MlflowException, OSError) as e:
            raise ConfigError(f"{key}: {artifact_uri} cannot be downloaded ({str(e).splitlines()[0]})") from None
        yield Path(local)
