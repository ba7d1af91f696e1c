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
