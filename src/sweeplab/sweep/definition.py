"""What defines a study, recorded on it when it is made, and how a rerun's sweep differs from it.

A study is continued only by the sweep that made it: the same space, sampler, pruner, metric,
direction and objective, and the same command-line overrides of the trial config. Anything else would mix trials
of two experiments in one study (or crash every trial, when a param changes kind).
"""

from __future__ import annotations

import json

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from sweeplab.errors import ConfigError
from sweeplab.secrets import hide_passwords
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.space import parse_space

ATTR = "sweeplab.definition"   # the study user attr (and parent run tag) holding it, as JSON
FORCED_TAG = "sweeplab.forced"  # on the parent run: each `sweep.resume=force` that changed the definition

# Command-line overrides that do not define the study, so a rerun may change them freely: how many
# trials and how long, where and on how many processes or GPUs it runs, how failures stop it, where it
# is recorded (tracking.*), what is registered at the end, and the study's name itself. The other
# sweep.* keys (params, sampler, pruner, metric, direction, objective) and the sampler= / pruner= group
# choices are not overrides here: their effect is recorded as a piece of its own.
NOT_DEFINING = ("sweep.n_trials", "sweep.workers", "sweep.timeout", "sweep.storage", "sweep.study_name",
                "sweep.max_consecutive_failures", "sweep.register_as", "sweep.devices_per_trial",
                "sweep.resume", "sweep.warm_start", "tracking", "hydra")
RECORDED_APART = ("sweep.params", "sweep.sampler", "sweep.pruner", "sweep.metric", "sweep.direction",
                  "sweep.objective", "sampler", "pruner")
PIECES = ("space", "sampler", "pruner", "metric", "direction", "objective", "overrides", "steps")
# What a trial's intermediate step means (pruning.TrialReporter). Studies made before this piece was
# recorded reported the 0-based epoch index: their pruners' rungs sit one epoch later, so such a study
# is not continued as if it were the same sweep, and a warm start moves its values to this meaning.
STEPS = "epochs_completed"
OLD_STEPS = "epoch_index"


def of(settings: SweepSettings, overrides: list[str]) -> dict:
    """The sweep's definition: JSON-ready, the same for the same sweep whatever the order of the overrides."""
    return {"space": dict(sorted(settings.space.describe().items())),
            "sampler": OmegaConf.to_container(settings.sampler_cfg, resolve=True),
            "pruner": OmegaConf.to_container(settings.pruner_cfg, resolve=True),
            "metric": list(settings.metrics), "direction": list(settings.directions),
            "objective": settings.objective, "overrides": fixed_overrides(overrides), "steps": STEPS}


def recorded_on(study) -> dict:
    """The definition recorded on `study` ({} for a study made before definitions were recorded)."""
    return json.loads(study.user_attrs.get(ATTR) or "{}")


def steps_of(recorded: dict) -> str:
    """What the intermediate steps of a study with this recorded definition mean."""
    return recorded.get("steps", OLD_STEPS)


def fixed_overrides(overrides: list[str]) -> dict[str, str]:
    """key -> value of the command-line overrides that change every trial's config (the last one wins)."""
    found = {}
    for line in overrides:
        key = line.partition("=")[0].strip()
        bare = key.lstrip("+~").split("@", 1)[0]
        if any(bare == k or bare.startswith(k + ".") for k in NOT_DEFINING + RECORDED_APART):
            continue
        try:
            [parsed] = OverridesParser.create().parse_overrides([line])
            key = parsed.get_key_element()
            value = None if parsed.is_delete() and parsed.value() is None else parsed.get_value_element_as_str()
        except (HydraException, ValueError):
            value = line.partition("=")[2].strip()
        found[key] = hide_passwords(value) if value is not None else "(deleted)"
    return dict(sorted(found.items()))


def differences(recorded: dict, wanted: dict) -> list[str]:
    """What differs between the study's definition and this sweep's, one short phrase each. A piece that
    the recorded definition lacks (recorded before sweeplab knew it) is not compared."""
    found = []
    for piece in PIECES:
        if piece == "steps":
            if steps_of(recorded) != wanted.get(piece):
                found.append(f"steps {steps_of(recorded)} → {wanted.get(piece)} (intermediate values are reported "
                             "after n epochs as step n since sweeplab recorded 'steps')")
            continue
        if piece not in recorded:
            continue
        old, new = recorded.get(piece), wanted.get(piece)
        if piece == "space":
            found += _keyed(piece, old or {}, new or {}, same=lambda a, b: _canonical(a) == _canonical(b))
        elif piece == "overrides":
            found += _keyed(piece, old or {}, new or {})
        elif piece in ("sampler", "pruner"):
            old, new = old or {}, new or {}
            if old.get("_target_") != new.get("_target_"):
                found.append(f"{piece} {_short(old.get('_target_'))} → {_short(new.get('_target_'))}")
            else:
                found += _keyed(piece, old, new, sep=".")
        elif old != new:
            shown = [",".join(map(str, v)) if isinstance(v, list) else str(v) for v in (old, new)]
            found.append(f"{piece} {shown[0]} → {shown[1]}")
    return found


def mismatch(study_name: str, found: list[str]) -> ConfigError:
    shown = "; ".join(found)
    return ConfigError(f"study '{study_name}' was made by a different sweep ({shown[:1500]}); "
                       f"start a new study with sweep.study_name=NEW, or continue this one anyway "
                       f"with sweep.resume=force")


def check_compatible(study, settings: SweepSettings) -> None:
    """Raise ConfigError when a param of the new space cannot be added to the study's earlier trials
    (another kind, log scale, or choices): Optuna would fail every new trial."""
    from optuna.distributions import check_distribution_compatibility

    earlier = {}
    for trial in study.get_trials(deepcopy=False):
        earlier.update(trial.distributions)
    for key, new in settings.space.distributions.items():
        if key in earlier:
            try:
                check_distribution_compatibility(earlier[key], new)
            except ValueError as e:
                raise ConfigError(f"study '{settings.study_name}' cannot continue with sweep.params.{key} "
                                  "changed that way, not even with sweep.resume=force: Optuna refuses it in a "
                                  f"study that has trials ({str(e).rstrip('.').lower()}); start a new study "
                                  "with sweep.study_name=NEW") from None


def to_json(definition: dict) -> str:
    return hide_passwords(json.dumps(definition, sort_keys=True))


def _keyed(piece: str, old: dict, new: dict, same=lambda a, b: a == b, sep: str = " ") -> list[str]:
    found = []
    for key in sorted(set(old) | set(new), key=str):
        if key not in old:
            found.append(f"{piece}{sep}{key}={new[key]} added")
        elif key not in new:
            found.append(f"{piece}{sep}{key}={old[key]} removed")
        elif not same(old[key], new[key]):
            found.append(f"{piece}{sep}{key}: {old[key]} → {new[key]}")
    return found


def _canonical(text: str) -> str:
    """A space entry as Optuna sees it, so that `interval(1e-4, 0.03)` equals `interval(0.0001,3e-2)`."""
    try:
        space = parse_space({"key": text})
    except ConfigError:
        return "".join(str(text).split())
    if space.distributions:
        return repr(space.distributions["key"]) + repr(space.choice_texts.get("key"))
    return "fixed " + "".join(str(text).split())


def _short(target) -> str:
    return str(target).rsplit(".", 1)[-1]
