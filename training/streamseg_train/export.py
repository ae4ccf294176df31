"""ONNX export of the segmentation network (LoRA weights as graph inputs)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .model import SegNet


class _ExportWrapper(nn.Module):
    def __init__(self, net: SegNet):
        super().__init__()
        self.net = net
        self.names = [t[0] for t in net.lora_targets()]

    def forward(self, image, class_embeddings, *lora_flat):
        lora = {n: (lora_flat[2 * i], lora_flat[2 * i + 1]) for i, n in enumerate(self.names)}
        return self.net(image, class_embeddings, lora)


def lora_input_names(module: str):
    return f"{module}.lora_A", f"{module}.lora_B"


def export_segnet(net: SegNet, path: str, size=(160, 160), opset: int = 17) -> None:
    if isinstance(size, int):
        size = (size, size)
    net = net.eval()
    wrapper = _ExportWrapper(net).eval()
    targets = net.lora_targets()
    image = torch.randn(1, 3, size[0], size[1])
    cls = net.class_embeddings.detach().clone()
    args = [image, cls]
    input_names = ["image", "class_embeddings"]
    dynamic_axes = {
        "image": {0: "batch", 2: "height", 3: "width"},
        "class_embeddings": {0: "num_classes"},
        "logits": {0: "batch", 1: "num_classes", 2: "height", 3: "width"},
    }
    for i, (name, cin, cout) in enumerate(targets):
        # rank-2 example (not 1, not 0) so the tracer cannot specialise on it
        args += [torch.zeros(2, cin), torch.zeros(cout, 2)]
        an, bn = lora_input_names(name)
        input_names += [an, bn]
        dynamic_axes[an] = {0: f"rank_{i}"}
        dynamic_axes[bn] = {1: f"rank_{i}"}
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            tuple(args),
            path,
            input_names=input_names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
        )
