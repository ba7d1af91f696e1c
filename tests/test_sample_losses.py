"""Each sample's share of the contrastive loss (per-sample gradients for an empirical Fisher)."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from fomo_host.components import TrainBatch
from fomo_host.engine.loss import contrastive_loss, contrastive_sample_loss
from fomo_host.engine.training import sample_losses


class ScaledPairs(nn.Module):
    """A CLIP-shaped toy: image and text features are the inputs scaled per coordinate by a and b, then normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.0, 0.5, -0.3]))
        self.b = nn.Parameter(torch.tensor([0.2, 1.0, 0.7]))

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return F.normalize(images * self.a, dim=-1), F.normalize(tokens * self.b, dim=-1), torch.tensor(5.0)


def toy_batch() -> TrainBatch:
    generator = torch.Generator().manual_seed(0)
    return TrainBatch(torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator))


def test_the_mean_of_the_sample_losses_is_the_contrastive_loss():
    generator = torch.Generator().manual_seed(1)
    images = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    texts = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    scale = torch.tensor(7.0)
    shares = [contrastive_sample_loss(images[i : i + 1], texts[i : i + 1], scale, images, texts, i) for i in range(6)]
    torch.testing.assert_close(torch.stack(shares).mean(), contrastive_loss(images, texts, scale))


def test_a_sample_loss_is_its_row_and_column_differentiated_through_its_own_pair():
    model, batch = ScaledPairs(), toy_batch()
    losses = list(sample_losses(model, batch, contextlib.nullcontext))
    assert len(losses) == 4
    for k, loss in enumerate(losses):
        got = torch.autograd.grad(loss, [model.a, model.b])
        # by hand: row k = 5 <i_k, t_j> over j, column k = 5 <t_k, i_j> over j, others' features held fixed
        images, texts, _ = model(batch.images, batch.tokens)
        images = torch.stack([images[j] if j == k else images[j].detach() for j in range(4)])
        texts = torch.stack([texts[j] if j == k else texts[j].detach() for j in range(4)])
        row, column = 5.0 * texts @ images[k], 5.0 * images @ texts[k]
        expected_loss = 0.5 * (torch.logsumexp(row, 0) - row[k]) + 0.5 * (torch.logsumexp(column, 0) - column[k])
        expected = torch.autograd.grad(expected_loss, [model.a, model.b])
        torch.testing.assert_close(loss, expected_loss)
        for value, reference in zip(got, expected, strict=True):
            torch.testing.assert_close(value, reference)
