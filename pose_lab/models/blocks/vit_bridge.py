"""ViT bridge: transformer blocks over the backbone output, added to the heatmap branch at the conv9 level.

Report §4.3.1, Figure 10 (Vision Transformer: Dosovitskiy et al. 2021). The first CNN-ViT model embeds
patches with a dense layer and upsamples the tokens bilinearly (`patch_embed="dense"`, `upsample="bilinear"`);
the report's "ViT2" uses a strided convolution for the patch embedding and a transposed convolution for the
upsampling (`patch_embed="conv"`, `upsample="transpose"`). The transformer blocks are timm's pre-norm ViT
`Block`, which carries the report's residual connections (x + attn, x + mlp).
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

PATCH_EMBEDS: tuple[str, ...] = ("dense", "conv")
UPSAMPLES: tuple[str, ...] = ("bilinear", "transpose")


class _DensePatchEmbed(nn.Module):
    """Flatten each P×P patch and project it with a Linear: (B, C, H, W) → (B, (H/P)·(W/P), D)."""

    def __init__(self, in_channels: int, width: int, patch_size: int) -> None:
        super().__init__()
        self.unfold = nn.Unfold(kernel_size=patch_size, stride=patch_size)
        self.proj = nn.Linear(in_channels * patch_size**2, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.unfold(x).transpose(1, 2))


class _ConvPatchEmbed(nn.Module):
    """A P×P stride-P convolution: (B, C, H, W) → (B, (H/P)·(W/P), D)."""

    def __init__(self, in_channels: int, width: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, width, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ViTBridge(nn.Module):
    """(B, C_in, S/2, S/2) backbone features → (B, C_out, S/4, S/4) for the heatmap branch's conv9 level.

    2×2 average pool to S/4 (channels kept, as in the report) → patches of P = (S/4)/grid pixels embedded
    to `width` → + learned positional embedding (one per grid cell, so its size depends on `grid`, not S)
    → `depth` timm ViT Blocks → LayerNorm → tokens as a (B, width, grid, grid) map → upsampled to S/4
    (bilinear, or a transposed conv with kernel = stride = P, the inverse of the patch grid) → 1×1 conv to C_out.
    The report's setting is S = 256, grid 8, width 128: 64 tokens of 8×8 patches, upsampled 8 → 64.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: int,
        grid: int = 8,
        width: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        patch_embed: str = "dense",
        upsample: str = "bilinear",
    ) -> None:
        super().__init__()
        size = input_size // 4
        if input_size % 4 or size % grid:
            raise ValueError(
                f"ViTBridge needs input_size/4 divisible by grid (patches of equal size), "
                f"got input_size {input_size} and grid {grid}"
            )
        if width % num_heads:
            raise ValueError(f"ViTBridge width {width} must be divisible by num_heads {num_heads}")
        patch_size = size // grid
        self.grid = grid

        # Parameter-free and channel-preserving; averaging lets every pixel reach the patch embedding.
        self.downsample = nn.AvgPool2d(2)
        if patch_embed == "dense":
            self.patch_embed: nn.Module = _DensePatchEmbed(in_channels, width, patch_size)
        elif patch_embed == "conv":
            self.patch_embed = _ConvPatchEmbed(in_channels, width, patch_size)
        else:
            raise ValueError(f"unknown patch_embed {patch_embed!r}; valid kinds: {', '.join(PATCH_EMBEDS)}")
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)  # ViT's initialisation
        self.blocks = nn.Sequential(*(Block(width, num_heads, mlp_ratio) for _ in range(depth)))
        # Pre-norm blocks leave the residual stream unnormalised; ViT closes the stack with a LayerNorm.
        self.norm = nn.LayerNorm(width)
        if upsample == "bilinear":
            self.upsample: nn.Module = nn.Upsample(size=(size, size), mode="bilinear", align_corners=False)
        elif upsample == "transpose":
            self.upsample = nn.ConvTranspose2d(width, width, patch_size, stride=patch_size)
        else:
            raise ValueError(f"unknown upsample {upsample!r}; valid kinds: {', '.join(UPSAMPLES)}")
        self.proj = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(self.downsample(x)) + self.pos_embed  # (B, grid², width)
        tokens = self.norm(self.blocks(tokens))
        # unflatten, not reshape(len(tokens), ...): a Python int batch size would be frozen into exported graphs.
        grid_map = tokens.transpose(1, 2).unflatten(2, (self.grid, self.grid))  # (B, width, grid, grid)
        return self.proj(self.upsample(grid_map))
