"""Batch-level image augmentation: random shifts (pad + crop) and horizontal flips."""

import torch
import torch.nn.functional as F


def shift_and_flip(images: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    n, _, h, w = images.shape
    flip = torch.rand(n, device=images.device) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,)).tolist()
    return padded[:, :, dy: dy + h, dx: dx + w]
