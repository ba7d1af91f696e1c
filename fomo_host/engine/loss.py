"""The CLIP contrastive loss with the learnable temperature, over the global batch."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_features(features: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's features, keeping gradients (identity with one process).

    Each process then computes the loss of the whole global batch; with DDP's
    gradient averaging this gives exactly the single-process gradient.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features
    import torch.distributed.nn.functional as dist_functional

    with warnings.catch_warnings():
        # the suggested replacement is private API; this autograd-aware gather is the public one
        warnings.simplefilter("ignore", FutureWarning)
        gathered = dist_functional.all_gather(features)
    return torch.cat(gathered, dim=0)


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy of image-text similarities; features must be normalised."""
    image_features = gather_features(image_features)
    text_features = gather_features(text_features)
    logits_per_image = logit_scale * image_features @ text_features.t()
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return 0.5 * (F.cross_entropy(logits_per_image.float(), labels) + F.cross_entropy(logits_per_image.t().float(), labels))


def contrastive_sample_loss(
    image_feature: torch.Tensor,
    text_feature: torch.Tensor,
    logit_scale: torch.Tensor,
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    index: int,
) -> torch.Tensor:
    """Sample ``index``'s share of the contrastive loss: half the cross-entropy of its image's row plus half that of its
    caption's column of the batch's logit matrix.

    ``image_feature`` and ``text_feature`` (``[1, d]``) are the sample's own features, which the
    result is differentiated through; ``image_features`` and ``text_features`` (``[N, d]``, the
    global batch) supply the other samples as fixed candidates (their ``index`` row is replaced by
    the sample's own). The mean over a batch of these values is :func:`contrastive_loss`.
    """
    position = torch.tensor([index], device=image_feature.device)
    texts = text_features.to(text_feature.dtype).index_copy(0, position, text_feature)
    images = image_features.to(image_feature.dtype).index_copy(0, position, image_feature)
    row = logit_scale * image_feature @ texts.t()
    column = logit_scale * text_feature @ images.t()
    return 0.5 * (F.cross_entropy(row.float(), position) + F.cross_entropy(column.float(), position))
