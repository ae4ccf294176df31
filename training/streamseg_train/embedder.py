"""Retrieval embedder: style statistics of the image and of frozen base features.

raw features (all linear-ish in the image's "style"):
  image channel mean/std (6), image gradient energy |dx|,|dy| per channel (6),
  stem features mean/std (2*c0), stage-1 features mean/std (2*c1),
  stage-3 (deep) features spatial mean (c3)
then z = (f - mu) / sigma (train-set statistics), e = z @ W (a fitted projection,
regularised LDA over the training conditions + leading PCA directions), and
L2 normalisation. Everything is baked into embedder.onnx as constants.
"""
from __future__ import annotations

import copy
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import to_tensor
from .model import SegNet


def _mean_std(f: torch.Tensor):
    m = f.mean(dim=(2, 3))
    s = torch.sqrt(((f - m[:, :, None, None]) ** 2).mean(dim=(2, 3)) + 1e-6)
    return m, s


class StyleFeatures(nn.Module):
    def __init__(self, net: SegNet):
        super().__init__()
        net = copy.deepcopy(net).eval()
        self.stem = net.stem
        self.s1 = net.s1
        self.s2 = net.s2
        self.s3 = net.s3
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, image):
        im, isd = _mean_std(image)
        dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean(dim=(2, 3))
        dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean(dim=(2, 3))
        f0 = self.stem(image)
        f1 = self.s1(f0, None)
        f3 = self.s3(self.s2(f1, None), None)
        m0, s0 = _mean_std(f0)
        m1, s1 = _mean_std(f1)
        m3 = f3.mean(dim=(2, 3))
        return torch.cat([im, isd, dx, dy, m0, s0, m1, s1, m3], dim=1)


class Embedder(nn.Module):
    def __init__(self, feats: StyleFeatures, mu: np.ndarray, sigma: np.ndarray, proj: np.ndarray):
        super().__init__()
        self.feats = feats
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
        self.register_buffer("sigma", torch.tensor(sigma, dtype=torch.float32))
        self.register_buffer("proj", torch.tensor(proj, dtype=torch.float32))

    def forward(self, image):
        z = (self.feats(image) - self.mu) / self.sigma
        return F.normalize(z @ self.proj, dim=1)


@torch.no_grad()
def raw_features(feats: StyleFeatures, images: np.ndarray, mean, std, batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        out.append(feats(to_tensor(images[i : i + batch], mean, std)).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_projection(f: np.ndarray, labels: List[str], dim: int, reg: float = 1e-1):
    """z-score, then regularised LDA directions (K-1) followed by PCA directions of
    the class means' complement, to ``dim`` columns. Returns mu, sigma, W."""
    mu = f.mean(0)
    sigma = f.std(0) + 1e-3
    z = (f - mu) / sigma
    classes = sorted(set(labels))
    lab = np.array([classes.index(l) for l in labels])
    d = z.shape[1]
    means = np.stack([z[lab == k].mean(0) for k in range(len(classes))])
    sw = np.zeros((d, d))
    for k in range(len(classes)):
        zk = z[lab == k] - means[k]
        sw += zk.T @ zk
    sw /= len(z)
    sw += reg * np.eye(d)
    gm = z.mean(0)
    sb = sum((lab == k).mean() * np.outer(means[k] - gm, means[k] - gm) for k in range(len(classes)))
    # generalized eigenproblem sb v = l sw v via whitening
    ew, ev = np.linalg.eigh(sw)
    wh = ev / np.sqrt(ew)[None, :]
    m = wh.T @ sb @ wh
    lw, lv = np.linalg.eigh(m)
    order = np.argsort(lw)[::-1]
    nl = min(len(classes) - 1, dim)
    lda = wh @ lv[:, order[:nl]]  # [d, nl], whitened-LDA directions
    cols = [lda]
    if dim > nl:
        # remaining columns: leading PCA directions (small weight), for spread
        u, s, vt = np.linalg.svd(z - gm, full_matrices=False)
        pca = vt[: dim - nl].T * 0.1 / np.sqrt(max(1.0, np.median(s[: dim - nl] ** 2) / len(z)))
        cols.append(pca)
    w = np.concatenate(cols, 1)
    return mu.astype(np.float32), sigma.astype(np.float32), w.astype(np.float32)


def embed_np(mu, sigma, w, f: np.ndarray) -> np.ndarray:
    e = ((f - mu) / sigma) @ w
    return e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)


def export_embedder(emb: Embedder, path: str, size=(160, 160), opset: int = 17) -> None:
    if isinstance(size, int):
        size = (size, size)
    emb.eval()
    with torch.no_grad():
        torch.onnx.export(
            emb,
            (torch.randn(2, 3, size[0], size[1]),),
            path,
            input_names=["image"],
            output_names=["embedding"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "embedding": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )


def load_embedder(path: str) -> Embedder:
    """Torch Embedder from a package's base_model.safetensors (embedder.* constants)."""
    from .model import load_base
    from .safetensors_io import load_file

    w = load_file(path)
    return Embedder(StyleFeatures(load_base(path)), w["embedder.mu"], w["embedder.sigma"], w["embedder.proj"]).eval()
