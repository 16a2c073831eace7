"""PyTorch backend: the UniHOI network in eager mode on the CPU or a CUDA device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from unihoi_ros.backends.base import WindowPrediction


class TorchBackend:
    """Runs :class:`unihoi_ros.model.UniHOI` with one encoder pass per frame.

    Args:
        model: a ``UniHOI`` network (put in eval mode here).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        dtype: compute dtype for autocast on CUDA (``torch.float16`` / ``torch.bfloat16``);
            None runs float32.
    """

    name = "torch"

    def __init__(self, model, device: str | torch.device = "cpu", dtype=None) -> None:
        self.device = str(device)
        self._device = torch.device(device)
        self.model = model.eval().to(self._device)
        self.num_frames = int(model.config.frames)
        self.dtype = dtype
        if dtype is not None and self._device.type != "cuda":
            raise ValueError("reduced precision (fp16/bf16) is supported on CUDA only")
        if self._device.type == "cpu" and model.config.size != "tiny":
            # ViT-size activations are 2-200 MB each: keep glibc from hoarding them.
            from unihoi_ros.model.cpu_memory import limit_heap_retention

            limit_heap_retention()

    def _autocast(self):
        if self.dtype is None:
            return torch.autocast(self._device.type, enabled=False)
        return torch.autocast(self._device.type, dtype=self.dtype)

    @torch.inference_mode()
    def encode(self, rgb: np.ndarray):
        """Encoder features of one ``(H, W, 3)`` uint8 frame (kept on the device)."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self._device)
        x = x.permute(2, 0, 1)[None].float().div_(255.0)
        with self._autocast():
            return self.model.encode(x)

    @torch.inference_mode()
    def infer_window(
        self, features: Sequence, rgbs: Sequence[np.ndarray], flows_bwd: np.ndarray
    ) -> WindowPrediction:
        """Depth ``(F, H, W)``, K ``(3, 3)`` and confidence ``(F-1, H, W)`` of the window."""
        flows = torch.from_numpy(np.ascontiguousarray(flows_bwd)).to(self._device)
        flows = flows.permute(0, 3, 1, 2)[None].float()  # (1, F-1, 2, H, W)
        with self._autocast():
            out = self.model.forward_window(list(features), flows)
        return WindowPrediction(
            depth=out.depth[0].float().cpu().numpy(),
            K=out.K[0].double().cpu().numpy(),
            confidence=out.confidence[0].float().cpu().numpy(),
        )
