"""Depthwise-separable convolution unit, the building brick of every BlazePose stage.

Implements the factorised convolution of MobileNet (Howard et al. 2017, §3.1) as the report uses it for
Conv_2_1/Conv_2_2 and inside every BlazeBlock (report §3.1.1, Figure 3): a 3×3 depthwise conv, then a 1×1
pointwise conv, each followed by normalisation, with an optional identity shortcut (BlazePose, Bazarevsky
et al. 2020, §3) before the activation.
"""

from __future__ import annotations

from torch import Tensor, nn


class SeparableConv(nn.Module):
    """depthwise 3×3 (stride 1|2) → norm → pointwise 1×1 → norm → (+ input) → activation.

    (B, C_in, H, W) → (B, C_out, ceil(H/stride), ceil(W/stride)).
    `residual=True` adds the input before the activation and needs C_in == C_out and stride 1.
    Pass `act_layer=nn.Identity` when the caller adds its own shortcut before activating (BlazeBlock).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        residual: bool = False,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"SeparableConv stride must be 1 or 2, got {stride}")
        if residual and (in_channels != out_channels or stride != 1):
            raise ValueError(
                "a residual SeparableConv needs in_channels == out_channels and stride 1, "
                f"got {in_channels}→{out_channels}, stride {stride}"
            )
        self.residual = residual
        # No conv biases: each conv is followed by a norm layer that has its own shift.
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False
        )
        self.norm_dw = norm_layer(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm_pw = norm_layer(out_channels)
        self.act = act_layer()

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm_pw(self.pointwise(self.norm_dw(self.depthwise(x))))
        if self.residual:
            y = y + x
        return self.act(y)
