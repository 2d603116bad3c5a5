"""Captum attributions of a network on fixed examples: Integrated Gradients, Saliency, GradientShap, Lime and
KernelShap."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from captum.attr import GradientShap, IntegratedGradients, LayerIntegratedGradients, Saliency
from torch import nn

from sweeplab.explain import perturbation, tokens
from sweeplab.explain.examples import Examples, TrainingBaselines
from sweeplab.explain.kinds import Kind, kind_of
from sweeplab.explain.network import outputs_of

METHODS = ("integrated_gradients", "saliency", "gradient_shap", "lime", "kernel_shap")
NAMES = {"integrated_gradients": "Integrated Gradients", "saliency": "Saliency", "gradient_shap": "GradientShap",
         "lime": "Lime", "kernel_shap": "KernelShap"}
STEPS = 50      # Integrated Gradients' steps along the path from the baseline (Captum's default)
SAMPLES = 20    # GradientShap's random (baseline, point on the path) draws per example


@dataclass
class Attributions:
    kind: Kind
    examples: Examples
    outputs: torch.Tensor              # the network's outputs on the examples
    target: torch.Tensor | int | None  # what is attributed: a class per example, an output index, or the output
    target_text: str                   # the same, in words
    classifier: bool                   # the target is the predicted class (else an output's value)
    baselines: dict[str, str]          # method -> its baseline, in words
    # method -> attribution per input position: the inputs' shape (dense inputs; Lime's and KernelShap's weight
    # of a feature spread evenly over its elements), N x T (tokens: one per word, the embedding's attributions
    # summed over its dimensions; Lime's and KernelShap's weight of the word)
    maps: dict[str, torch.Tensor] = field(default_factory=dict)


def is_classifier(outputs: torch.Tensor, labels: torch.Tensor) -> bool:
    """Integer labels and one output (logit) per class."""
    return not labels.dtype.is_floating_point and outputs.ndim == 2 and outputs.shape[1] > 1


def choose_target(outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor | int | None, str]:
    """A classifier's predicted class; else its first output."""
    if is_classifier(outputs, labels):
        return outputs.argmax(1), "the predicted class"
    if outputs.ndim == 1:
        return None, "the output"
    return 0, "output 0" + (f" of {outputs.shape[1]} (of a forecast: the next step)" if outputs.shape[1] > 1 else "")


def attribute(net: nn.Module, examples: Examples, training: TrainingBaselines | None, seed: int) -> Attributions:
    """Every method of METHODS on the examples; `training` (dense inputs only) gives the baselines.

    GradientShap, Lime and KernelShap draw at random: torch and numpy are seeded with `seed` before each, so
    that a run is explained the same every time.
    """
    net = net.eval()
    x = examples.inputs
    outputs = outputs_of(net, x)
    target, target_text = choose_target(outputs, examples.labels)
    kind = kind_of(x)
    if kind is Kind.TOKENS:
        maps, baselines = _tokens(net, x, target, seed)
    else:
        maps, baselines = _dense(net, x, kind, target, training, seed)
    return Attributions(kind, examples, outputs, target, target_text, is_classifier(outputs, examples.labels),
                        baselines, maps)


def _dense(net: nn.Module, x: torch.Tensor, kind: Kind, target, training: TrainingBaselines, seed: int):
    maps = {
        "integrated_gradients": IntegratedGradients(net).attribute(x, baselines=training.mean, target=target,
                                                                   n_steps=STEPS),
        # Inputs that already require gradients: else Captum warns that it had to ask for them.
        "saliency": Saliency(net).attribute(x.clone().requires_grad_(), target=target),   # |gradient|
    }
    _seed(seed)
    maps["gradient_shap"] = GradientShap(net).attribute(x, baselines=training.background, target=target,
                                                        n_samples=SAMPLES)
    for method in perturbation.ALGORITHMS:
        _seed(seed)
        maps[method] = perturbation.dense(method, net, x, kind, training.mean, target)
    features = _dense_features(kind, x.shape)
    baselines = {"integrated_gradients": "the mean training input", "saliency": "none (|gradient| at the input)",
                 "gradient_shap": f"{len(training.background)} training inputs",
                 **{method: f"the mean training input, {features}" for method in perturbation.ALGORITHMS}}
    return {name: value.detach() for name, value in maps.items()}, baselines


def _dense_features(kind: Kind, shape: torch.Size) -> str:
    """What Lime's and KernelShap's features of dense inputs are, in words."""
    if kind is Kind.IMAGES:
        side = perturbation.patch_side(*shape[2:])
        return (f"set per superpixel (a {side} x {side} pixel square, all channels; "
                f"{int(perturbation.dense_mask(kind, shape[1:]).max()) + 1} of them)")
    if kind is Kind.STEPS:
        return "set per input step (all channels)"
    return "set per column"


def _tokens(net: nn.Module, ids: torch.Tensor, target, seed: int):
    embedding = tokens.embedding_of(net)
    pad = tokens.pad_id(embedding)
    padded = torch.full_like(ids, pad)
    words = LayerIntegratedGradients(net, embedding).attribute(ids, baselines=padded, target=target, n_steps=STEPS)
    on_embeddings = tokens.OnEmbeddings(net, embedding)
    with torch.no_grad():
        vectors, pad_vectors = embedding(ids), embedding(padded)
    maps = {
        "integrated_gradients": words,
        "saliency": Saliency(on_embeddings).attribute(vectors.clone().requires_grad_(), target=target,
                                                      additional_forward_args=(ids,)),
    }
    _seed(seed)
    maps["gradient_shap"] = GradientShap(on_embeddings).attribute(
        vectors, baselines=pad_vectors, target=target, additional_forward_args=(ids,), n_samples=SAMPLES)
    # A word's attribution: its embedding's attributions summed over the embedding's dimensions.
    maps = {name: value.detach().sum(-1) for name, value in maps.items()}
    for method in perturbation.ALGORITHMS:   # already a weight per word
        _seed(seed)
        maps[method] = perturbation.words(method, on_embeddings, ids, vectors, pad_vectors, pad, target)
    baselines = {"integrated_gradients": f"every word the pad id {pad} (LayerIntegratedGradients on the embedding)",
                 "saliency": "none (|gradient| at the embedding)",
                 "gradient_shap": f"every word the pad id {pad}, at the embedding",
                 **{method: f"a word replaced by the pad id {pad}'s embedding, a feature per word (padding is none)"
                    for method in perturbation.ALGORITHMS}}
    return maps, baselines


def _seed(seed: int) -> None:
    """GradientShap draws its baselines with torch's generator and its points on the path with numpy's;
    Lime and KernelShap draw which features to keep with torch's."""
    torch.manual_seed(seed)
    np.random.seed(seed)
