"""×2 upsampling chosen by name, for the heatmap decoder's Conv_7a..Conv_10a.

"bilinear" is the fixed interpolation of the base model (report §3.1.2); "transpose" is the learned
2×2 stride-2 transposed convolution of the architecture modifications (report §4.1).
"""

from __future__ import annotations

from torch import nn

UPSAMPLE_KINDS: tuple[str, ...] = ("bilinear", "transpose")


def make_upsample(
    kind: str,
    channels: int,
    act_layer: type[nn.Module] = nn.ReLU,
    norm_layer: type[nn.Module] = nn.BatchNorm2d,
) -> nn.Module:
    """(B, C, H, W) → (B, C, 2H, 2W); `channels` is C, used by the learned kind only."""
    if kind == "bilinear":
        return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    if kind == "transpose":
        return nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 2, stride=2, bias=False),
            norm_layer(channels),
            act_layer(),
        )
    raise ValueError(f"unknown upsample kind {kind!r}; valid kinds are: {', '.join(UPSAMPLE_KINDS)}")
