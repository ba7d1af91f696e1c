"""A tiny CLIP with open_clip's module layout, in plain torch: what the method and launcher suites train.

Update methods find their layers by open_clip's names (``visual.transformer.resblocks.N.attn``,
``mlp.c_fc``, ``ln_1``, ``ln_final``, ``text_projection``, ...) and types
(``nn.MultiheadAttention``, ``nn.Linear``, ``nn.LayerNorm``), so a method that trains
this model the way it claims trains open_clip's the same way. It needs no open_clip
install and no downloaded vocabulary: the tokenizer hashes words into a small vocabulary
(:func:`fomo_host.testing.toys.toy_tokenizer`, with an end-of-text token that pooling
finds by its id, as open_clip's does).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch
import torch.utils.checkpoint
from torch import nn

from ..components import ModelBundle

END_OF_TEXT = 1023
"""The highest token id: the text tower pools the features at the end-of-text token, found by ``argmax`` (open_clip's rule)."""
VOCABULARY = END_OF_TEXT + 1


def word_tokenizer(context_length: int) -> Callable[[Sequence[str]], torch.Tensor]:
    """Words hashed into ``VOCABULARY - 2`` ids (0 pads), then the end-of-text token: ``[N, context_length]`` int64."""

    def tokenize(texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            ids = [1 + zlib.crc32(word.encode()) % (END_OF_TEXT - 1) for word in text.lower().split()][: context_length - 1]
            ids.append(END_OF_TEXT)
            rows.append(ids + [0] * (context_length - len(ids)))
        return torch.tensor(rows, dtype=torch.long)

    return tokenize


class ResidualAttentionBlock(nn.Module):
    """open_clip's pre-norm transformer block: ``ln_1``, ``attn``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, attn_mask, use_reentrant=False)
            else:
                x = block(x, attn_mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int, patch_size: int, width: int, layers: int, heads: int, embed_dim: int) -> None:
        super().__init__()
        grid = image_size // patch_size
        self.image_size = image_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) * width**-0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, embed_dim) * width**-0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1).to(x.dtype), x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class TransformerCLIP(nn.Module):
    """ViT image tower, causal text transformer, learned temperature: open_clip's ``CLIP`` at toy size (~0.1 M parameters)."""

    def __init__(
        self,
        image_size: int = 16,
        patch_size: int = 8,
        width: int = 32,
        layers: int = 3,
        heads: int = 2,
        context_length: int = 8,
        embed_dim: int = 32,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.visual = VisionTransformer(image_size, patch_size, width, layers, heads, embed_dim)
        self.token_embedding = nn.Embedding(VOCABULARY, width)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.transformer = Transformer(width, layers, heads)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed_dim) * width**-0.5)
        self.logit_scale = nn.Parameter(torch.tensor(2.6593))  # log(1 / 0.07), open_clip's start
        causal = torch.full((context_length, context_length), float("-inf")).triu(1)
        self.register_buffer("attn_mask", causal, persistent=False)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.visual.transformer.grad_checkpointing = enable
        self.transformer.grad_checkpointing = enable

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.visual(images)
        return nn.functional.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.attn_mask))
        features = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection
        return nn.functional.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True), self.logit_scale.exp()


def transformer_clip_bundle(image_size: int = 16, context_length: int = 8, **shape: int) -> ModelBundle:
    """The model as a model component returns it (random weights from torch's current seed)."""
    model = TransformerCLIP(image_size=image_size, context_length=context_length, **shape)
    tokenizer = word_tokenizer(context_length)
    return ModelBundle(model, tokenizer, image_size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), name="conformance-clip")
