"""PyTorch backend: the UniHOI network in eager mode on the CPU or a CUDA device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from unihoi_ros.backends.base import Backend, WindowPrediction


class TorchBackend(Backend):
    """Runs :class:`unihoi_ros.model.UniHOI` with one encoder pass per frame.

    Args:
        model: a ``UniHOI`` network (put in eval mode here).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        dtype: compute dtype for autocast on CUDA (``torch.float16`` / ``torch.bfloat16``);
            None runs float32.
        channels_last: store the 2-D/3-D convolution weights channels-last (NHWC), so the
            convolutions run in that layout (cuDNN and oneDNN prefer it); same results.
        compile: ``torch.compile`` the encoder and the window network for the stream's fixed
            shapes (the first call per shape compiles: seconds to minutes).
        cuda_graphs: on CUDA, replay the compiled steady state as CUDA graphs
            (``torch.compile(mode="reduce-overhead")``; implies ``compile``). Outputs are
            copied out of the graph pools, since a stream caches encoder features.
    """

    name = "torch"
    decodes_last = True

    def __init__(
        self, model, device: str | torch.device = "cpu", dtype=None, *,
        channels_last: bool = False, compile: bool = False, cuda_graphs: bool = False,
    ) -> None:
        self.device = str(device)
        self._device = torch.device(device)
        self.model = model.eval().to(self._device)
        self.num_frames = int(model.config.frames)
        self.dtype = dtype
        if dtype is not None and self._device.type != "cuda":
            raise ValueError("reduced precision (fp16/bf16) is supported on CUDA only")
        if cuda_graphs and self._device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        if self._device.type == "cpu" and model.config.size != "tiny":
            # ViT-size activations are 2-200 MB each: keep glibc from hoarding them.
            from unihoi_ros.model.cpu_memory import limit_heap_retention

            limit_heap_retention()
        if channels_last:
            _to_channels_last(self.model)
        self.options = {"channels_last": channels_last, "compile": compile or cuda_graphs,
                        "cuda_graphs": cuda_graphs}
        self._encode, self._window = self.model.encode, self.model.forward_window
        self._copy_out = cuda_graphs
        if compile or cuda_graphs:
            mode = "reduce-overhead" if cuda_graphs else None
            self._encode = torch.compile(self.model.encode, dynamic=False, mode=mode)
            self._window = torch.compile(self.model.forward_window, dynamic=False, mode=mode)

    def _autocast(self):
        if self.dtype is None:
            return torch.autocast(self._device.type, enabled=False)
        return torch.autocast(self._device.type, dtype=self.dtype)

    @torch.inference_mode()
    def encode(self, rgb: np.ndarray):
        """Encoder features of one ``(H, W, 3)`` uint8 frame (kept on the device)."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self._device)
        x = x.permute(2, 0, 1)[None].float().div_(255.0)
        if self._copy_out:
            torch.compiler.cudagraph_mark_step_begin()
        with self._autocast():
            feats = self._encode(x)
        if self._copy_out:  # the next replay overwrites the graph's output buffers
            feats = type(feats)([f.clone() for f in feats.features], feats.cls_tokens.clone())
        return feats

    @torch.inference_mode()
    def infer_window(
        self, features: Sequence, rgbs: Sequence[np.ndarray], flows_bwd: np.ndarray,
        decode_last: int | None = None,
    ) -> WindowPrediction:
        """Depth ``(F, H, W)``, K ``(3, 3)`` and confidence ``(F-1, H, W)`` of the window
        (``decode_last = n``: depth and confidence of the last n frames only)."""
        flows = torch.from_numpy(np.ascontiguousarray(flows_bwd)).to(self._device)
        flows = flows.permute(0, 3, 1, 2)[None].float()  # (1, F-1, 2, H, W)
        if self._copy_out:
            torch.compiler.cudagraph_mark_step_begin()
        with self._autocast():
            out = self._window(list(features), flows, decode_last)
        return WindowPrediction(
            depth=out.depth[0].float().cpu().numpy(),
            K=out.K[0].double().cpu().numpy(),
            confidence=out.confidence[0].float().cpu().numpy(),
            first_frame=self.num_frames - int(out.depth.shape[1]),
        )


def _to_channels_last(model: torch.nn.Module) -> None:
    """Convolution weights to NHWC (4-D) / NDHWC (5-D) in place; other tensors unchanged."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
        elif isinstance(module, torch.nn.Conv3d):
            module.weight.data = module.weight.data.contiguous(
                memory_format=torch.channels_last_3d)
