"""The CNN backbone, the Classifier's loss terms, the epoch loss mean, and the learning-rate schedules."""

import pytest
import torch

from sweeplab.models import schedules
from sweeplab.models.classifier import Classifier
from sweeplab.models.cnn import CNN
from sweeplab.models.supervised import BatchMean


@pytest.mark.parametrize("size", [8, 28])
def test_cnn_shapes(size):
    net = CNN(in_channels=1, channels=[8, 16], pooled_size=3)
    assert net(torch.zeros(4, 1, size, size)).shape == (4, net.out_features) == (4, 16 * 9)


def test_epoch_loss_is_weighted_by_batch_size_and_keeps_nan():
    mean = BatchMean()
    mean.update(torch.tensor(1.0), 64)
    mean.update(torch.tensor(4.0), 16)       # a short last batch counts for its 16 examples
    assert mean.compute().item() == pytest.approx((64 * 1.0 + 16 * 4.0) / 80)
    mean.reset()
    assert not mean.update_called
    mean.update(torch.tensor(1.0), 8)
    mean.update(torch.tensor(float("nan")), 8)   # a diverged step shows, for the pruner to refuse
    assert torch.isnan(mean.compute())


def test_classifier_l1_and_label_smoothing_change_the_loss():
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))

    def loss(**kw):
        torch.manual_seed(1)
        model = Classifier(CNN(1, [4]), num_classes=10, **kw).eval()
        model.log = lambda *a, **k: None
        return model.training_step((x, y), 0).item()

    plain = loss()
    assert loss(l1=0.01) > plain
    assert loss(label_smoothing=0.2) != pytest.approx(plain)
    with pytest.raises(ValueError, match="model.dropout"):
        Classifier(CNN(1, [4]), num_classes=10, dropout=1.5)


@pytest.mark.parametrize("factory, kwargs, first, last", [
    (schedules.constant, {}, 0.1, 0.1),
    (schedules.cosine, {"min_lr": 0.01}, 0.1, 0.01),
    (schedules.one_cycle, {"max_lr": 0.1}, 0.004, 0.0),
])
def test_schedules_span_all_steps(factory, kwargs, first, last):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = factory(optimizer, total_steps=10, **kwargs)
    seen = []
    for _ in range(10):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(first, abs=1e-3)
    assert seen[-1] == pytest.approx(last, abs=1e-3)
