"""BlazeBlock: a stride-2 separable conv with a max-pool shortcut, then residual separable units.

From BlazeFace (Bazarevsky et al. 2019, §2, Figure 1) as reused by BlazePose (Bazarevsky et al. 2020, Figure 4)
and by the report's Conv_3..Conv_6 and Conv_12a..Conv_15 (report §3.1, Figure 3).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from pose_lab.models.blocks.separable import SeparableConv


class BlazeBlock(nn.Module):
    """Halve the resolution, change width, then refine with `num_units` residual separable units.

    (B, C_in, H, W) → (B, C_out, ceil(H/2), ceil(W/2)).
    Shortcut: 2×2 max-pool (ceil mode, so odd sizes match the stride-2 conv), then zero channels appended
    when widening (parameter-free, as in BlazeFace) or a 1×1 conv when narrowing.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_units: int = 0,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.down = SeparableConv(
            in_channels, out_channels, stride=2, act_layer=nn.Identity, norm_layer=norm_layer
        )
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.channel_pad = max(out_channels - in_channels, 0)
        self.project = nn.Conv2d(in_channels, out_channels, 1) if out_channels < in_channels else None
        self.act = act_layer()
        self.units = nn.Sequential(
            *(
                SeparableConv(out_channels, out_channels, residual=True, act_layer=act_layer, norm_layer=norm_layer)
                for _ in range(num_units)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.pool(x)
        if self.project is not None:
            shortcut = self.project(shortcut)
        elif self.channel_pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.channel_pad))
        return self.units(self.act(self.down(x) + shortcut))
