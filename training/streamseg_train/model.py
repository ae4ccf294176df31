"""SegNet: a small conv/attention hybrid with an open-vocabulary head.

Every LoRA target is a pointwise (1x1 conv) or linear layer. LoRA weights are
*arguments* of ``forward`` (``lora={module: (A, B)}``), never parameters of the
network, so the same code path is trained in torch and exported to ONNX with the
weights as graph inputs. The graph computes ``base(x) + x @ A.T @ B.T`` with no
scaling: callers fold ``lora_alpha / r`` into B.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

LoraDict = Dict[str, Tuple[torch.Tensor, torch.Tensor]]

CLASS_NAMES = ["sky", "road", "sidewalk", "building", "vegetation", "vehicle", "person", "pole"]


def _pad_rank(a: torch.Tensor, b: torch.Tensor):
    """Append one zero rank component (exact: contributes nothing).

    ONNX Runtime's MatMul does not zero its output when the inner dimension is 0,
    so without this a rank-0 (empty) LoRA input gives garbage instead of the base.
    """
    a = torch.cat([a, torch.zeros(1, a.shape[1], dtype=a.dtype)], 0)
    b = torch.cat([b, torch.zeros(b.shape[0], 1, dtype=b.dtype)], 1)
    return a, b


def _lora_pointwise(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [N,C,H,W]; a [r,C]; b [O,r] -> [N,O,H,W] = per-pixel B(A x)."""
    a, b = _pad_rank(a, b)
    n, c, h, w = x.shape
    xf = x.reshape(n, c, h * w)
    t = torch.matmul(a, xf)  # [N,r,HW]
    u = torch.matmul(b, t)  # [N,O,HW]
    return u.reshape(n, b.shape[0], h, w)


class LoraConv1x1(nn.Module):
    """1x1 conv (bias) that accepts an optional LoRA delta."""

    def __init__(self, cin: int, cout: int, name: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=True)
        self.lora_name = name
        self.in_features = cin
        self.out_features = cout

    def forward(self, x: torch.Tensor, lora: Optional[LoraDict]) -> torch.Tensor:
        y = self.conv(x)
        if lora is not None and self.lora_name in lora:
            a, b = lora[self.lora_name]
            y = y + _lora_pointwise(x, a, b)
        return y


class LoraLinear(nn.Module):
    def __init__(self, cin: int, cout: int, name: str):
        super().__init__()
        self.linear = nn.Linear(cin, cout)
        self.lora_name = name
        self.in_features = cin
        self.out_features = cout

    def forward(self, x: torch.Tensor, lora: Optional[LoraDict]) -> torch.Tensor:
        y = self.linear(x)
        if lora is not None and self.lora_name in lora:
            a, b = _pad_rank(*lora[self.lora_name])
            y = y + torch.matmul(torch.matmul(x, a.t()), b.t())
        return y


def conv_bn(cin, cout, k=3, s=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MBBlock(nn.Module):
    """Depthwise 3x3 -> pointwise (LoRA target) -> BN -> ReLU, residual."""

    def __init__(self, c: int, name: str):
        super().__init__()
        self.dw = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pw = LoraConv1x1(c, c, name)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x, lora):
        return F.relu(x + self.bn(self.pw(self.dw(x), lora)))


class Stage(nn.Module):
    def __init__(self, cin: int, cout: int, name: str, blocks: int = 2):
        super().__init__()
        self.down = conv_bn(cin, cout, 3, 2)
        self.blocks = nn.ModuleList([MBBlock(cout, f"{name}.b{i}.pw") for i in range(blocks)])

    def forward(self, x, lora):
        x = self.down(x)
        for b in self.blocks:
            x = b(x, lora)
        return x


class AttnBlock(nn.Module):
    """Pre-norm transformer block over the 1/16 grid (qkv, proj, fc1, fc2 are LoRA targets)."""

    def __init__(self, dim: int, heads: int, name: str, mlp: int = 2):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = LoraLinear(dim, dim * 3, f"{name}.qkv")
        self.proj = LoraLinear(dim, dim, f"{name}.proj")
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = LoraLinear(dim, dim * mlp, f"{name}.fc1")
        self.fc2 = LoraLinear(dim * mlp, dim, f"{name}.fc2")

    def forward(self, x, pos, lora):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) + pos  # [N,L,C]
        y = self.norm1(t)
        qkv = self.qkv(y, lora)  # [N,L,3C]
        hd = c // self.heads
        qkv = qkv.reshape(n, h * w, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd)), dim=-1)
        o = torch.matmul(att, v).transpose(1, 2).reshape(n, h * w, c)
        t = t + self.proj(o, lora)
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t), lora)), lora)
        return t.transpose(1, 2).reshape(n, c, h, w)


class SegNet(nn.Module):
    def __init__(self, widths=(24, 48, 96, 160), dec=64, emb_dim=64, num_classes=8, heads=4, attn_grid=10):
        super().__init__()
        self.config = dict(widths=list(widths), dec=dec, emb_dim=emb_dim, num_classes=num_classes, heads=heads, attn_grid=attn_grid)
        c0, c1, c2, c3 = widths
        self.stem = conv_bn(3, c0, 3, 2)  # 1/2
        self.s1 = Stage(c0, c1, "enc.s1", 1)  # 1/4
        self.s2 = Stage(c1, c2, "enc.s2", 2)  # 1/8
        self.s3 = Stage(c2, c3, "enc.s3", 2)  # 1/16
        self.pos = nn.Parameter(torch.zeros(1, attn_grid * attn_grid, c3))
        self.attn_grid = attn_grid
        self.attn = nn.ModuleList([AttnBlock(c3, heads, "enc.attn0")])
        self.lat3 = LoraConv1x1(c3, dec, "dec.lat3")
        self.lat2 = LoraConv1x1(c2, dec, "dec.lat2")
        self.lat1 = LoraConv1x1(c1, dec, "dec.lat1")
        self.fuse2 = conv_bn(dec, dec, 3, 1)
        self.fuse1 = conv_bn(dec, dec, 3, 1)
        self.dec_proj = LoraConv1x1(dec, dec, "dec.proj")
        self.dec_bn = nn.BatchNorm2d(dec)
        # 1/2-resolution refinement (thin classes: poles, people)
        self.lat0 = LoraConv1x1(c0, dec, "dec.lat0")
        self.fuse0 = nn.Sequential(
            nn.Conv2d(dec, dec, 3, 1, 1, groups=dec, bias=False), nn.BatchNorm2d(dec), nn.ReLU(inplace=True)
        )
        self.head = LoraConv1x1(dec, emb_dim, "head.proj")
        self.emb_dim = emb_dim
        # learned class embeddings (the default vocabulary) + temperature
        self.class_embeddings = nn.Parameter(F.normalize(torch.randn(num_classes, emb_dim), dim=1))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    # --- helpers -------------------------------------------------------
    def lora_targets(self):
        """[(module_name, in, out)] in a fixed order."""
        out = []
        for m in self.modules():
            if isinstance(m, (LoraConv1x1, LoraLinear)):
                out.append((m.lora_name, m.in_features, m.out_features))
        return out

    def _pos(self, h, w):
        # bilinear resize to the same size is the identity, so this is exact at
        # the native 160 px input and keeps H/W dynamic in the ONNX graph.
        g = self.attn_grid
        p = self.pos.transpose(1, 2).reshape(1, -1, g, g)
        p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
        return p.flatten(2).transpose(1, 2)

    def features(self, image, lora: Optional[LoraDict] = None):
        """Returns the pixel features [N,D,H/2,W/2] (not normalised)."""
        f0 = self.stem(image)
        f1 = self.s1(f0, lora)
        f2 = self.s2(f1, lora)
        f3 = self.s3(f2, lora)
        pos = self._pos(f3.shape[2], f3.shape[3])
        for blk in self.attn:
            f3 = blk(f3, pos, lora)
        p3 = self.lat3(f3, lora)
        p2 = self.lat2(f2, lora) + F.interpolate(p3, size=f2.shape[2:], mode="bilinear", align_corners=False)
        p2 = self.fuse2(p2)
        p1 = self.lat1(f1, lora) + F.interpolate(p2, size=f1.shape[2:], mode="bilinear", align_corners=False)
        p1 = self.fuse1(p1)
        p1 = F.relu(self.dec_bn(self.dec_proj(p1, lora)))
        p0 = self.lat0(f0, lora) + F.interpolate(p1, size=f0.shape[2:], mode="bilinear", align_corners=False)
        p0 = self.fuse0(p0)
        return self.head(p0, lora)

    def forward(self, image, class_embeddings=None, lora: Optional[LoraDict] = None):
        if class_embeddings is None:
            class_embeddings = self.class_embeddings
        feats = F.normalize(self.features(image, lora), dim=1)
        emb = F.normalize(class_embeddings, dim=1)
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = torch.einsum("ndhw,cd->nchw", feats, emb) * scale
        return F.interpolate(logits, size=image.shape[2:], mode="bilinear", align_corners=False)


class LoraAdapter(nn.Module):
    """Trainable PEFT-style LoRA weights for the targets of a SegNet."""

    def __init__(self, targets, r=8, alpha=16.0):
        super().__init__()
        self.r = r
        self.alpha = alpha
        self.names = [t[0] for t in targets]
        self.A = nn.ParameterList()
        self.B = nn.ParameterList()
        for _, cin, cout in targets:
            a = torch.empty(r, cin)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # PEFT default for A
            self.A.append(nn.Parameter(a))
            self.B.append(nn.Parameter(torch.zeros(cout, r)))

    @property
    def scaling(self):
        return self.alpha / self.r

    def as_dict(self) -> LoraDict:
        s = self.scaling
        return {n: (a, b * s) for n, a, b in zip(self.names, self.A, self.B)}


def param_count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def load_base(path: str) -> SegNet:
    """SegNet from a package's base_model.safetensors."""
    import json as _json
    import struct

    from .safetensors_io import load_file

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = _json.loads(f.read(n))
    cfg = _json.loads(header["__metadata__"]["config"])
    net = SegNet(**cfg)
    sd = {k: torch.from_numpy(v) for k, v in load_file(path).items() if not k.startswith("embedder.")}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    bad = [m for m in missing if not m.endswith("num_batches_tracked")]
    if bad or unexpected:
        raise ValueError(f"base weights mismatch: missing={bad} unexpected={unexpected}")
    return net.eval()
