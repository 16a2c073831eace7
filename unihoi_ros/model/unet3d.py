"""Residual 3D U-Net over the frames of a window (the authors' video adaptor).

Parameter names follow the authors' ``model/backbone/modules/unet3d.py``: ``inc``,
``down_module.{i}.avgpool_conv.1``, ``fc``, ``up_module.{i}.conv``, ``out.conv``, each
``DoubleConv`` a ``double_conv`` Sequential of ``Conv3d -> BatchNorm3d -> ReLU`` (a single
convolution despite the name). Pooling is spatial only (1x2x2 average); up-sampling is
bilinear with ``align_corners=True`` per frame (their trilinear resize keeps the frame
axis, so it reduces to that), computed as matrix products (:mod:`.resample`).
"""

from __future__ import annotations

from torch import Tensor, nn

from .resample import resize2d


class DoubleConv(nn.Module):
    """``Conv3d(k, padding 1) -> BatchNorm3d -> ReLU`` on ``(B, C, F, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=kernel_size, padding=1),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """Spatial 2x average pooling (floor), then :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.avgpool_conv = nn.Sequential(
            nn.AvgPool3d((1, 2, 2)), DoubleConv(in_channels, out_channels, kernel_size)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.avgpool_conv(x)


class Up(nn.Module):
    """Resize to the skip's ``(H, W)`` (bilinear, align_corners=True), then DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, kernel_size)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        return self.conv(resize2d(x, target.shape[-2:], align_corners=True))


class OutConv(nn.Module):
    """1x1x1 convolution back to the input channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class UNet3D(nn.Module):
    """``x (B, C, F, h, w) -> x + out(U-Net(x))``, same shape.

    Levels ``channels[0..n-1]``; every decoder level adds its skip (``up(feat) + skip``).
    """

    def __init__(self, input_channels: int, channels: tuple[int, ...], kernel_size: int = 3):
        super().__init__()
        if len(channels) < 2:
            raise ValueError("a U-Net needs at least two levels")
        self.channels = tuple(channels)
        self.inc = DoubleConv(input_channels, channels[0], kernel_size)
        self.down_module = nn.ModuleList(
            [Down(channels[i], channels[i + 1], kernel_size) for i in range(len(channels) - 1)]
        )
        self.fc = nn.Conv3d(channels[-1], channels[-1], kernel_size=1)
        self.up_module = nn.ModuleList(
            [Up(channels[i], channels[i - 1], kernel_size)
             for i in reversed(range(1, len(channels)))]
        )
        self.out = OutConv(channels[0], input_channels)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.inc(x)
        skips = [feat]
        for down in self.down_module:
            feat = down(feat)
            skips.append(feat)
        feat = self.fc(feat)
        for i, up in enumerate(self.up_module):
            skip = skips[-i - 2]
            feat = up(feat, skip) + skip
        return self.out(feat) + x
