"""Retrieval embedder: style statistics of the image and of frozen base features.

raw features (all linear-ish in the image's "style"):
  image channel mean/std (6), image gradient energy |dx|,|dy| per channel (6),
  stem features mean/std (2*c0), stage-1 features mean/std (2*c1),
  stage-3 (deep) features spatial mean (c3)
then z = (f - mu) / sigma (train-set statistics) and a condition head: e = softmax((z @ W + b) / T),
a multinomial logistic regression over the training conditions (clear + each adapter's), so
the embedding is the probability of each condition and an adapter's centroid is close to its
one-hot vector. Why not the earlier LDA projection + cosine: a composition (fog+night) is not
in the training set, and in LDA space it landed near whichever single happened to be closest
(often neither component); the head's probabilities put it on its components. Everything is
baked into embedder.onnx as constants.
"""
from __future__ import annotations

import copy
import warnings
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
    """Style features → condition probabilities, L2-normalised (retrieval is by cosine)."""

    def __init__(self, feats: StyleFeatures, mu: np.ndarray, sigma: np.ndarray, proj: np.ndarray, bias: np.ndarray, temperature: float):
        super().__init__()
        self.feats = feats
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
        self.register_buffer("sigma", torch.tensor(sigma, dtype=torch.float32))
        self.register_buffer("proj", torch.tensor(proj, dtype=torch.float32))
        self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))
        self.temperature = float(temperature)

    def forward(self, image):
        z = (self.feats(image) - self.mu) / self.sigma
        return F.normalize(torch.softmax((z @ self.proj + self.bias) / self.temperature, dim=1), dim=1)


@torch.no_grad()
def raw_features(feats: StyleFeatures, images: np.ndarray, mean, std, batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        out.append(feats(to_tensor(images[i : i + batch], mean, std)).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_condition_head(f: np.ndarray, labels: List[str], classes: List[str], l2: float = 1e-3, iters: int = 300):
    """Multinomial logistic regression of the z-scored features on the conditions, classes
    weighted equally (clear has five times the stills of each adapter condition), L2 on W.
    Returns mu, sigma, W [d, K], b [K] (K = len(classes), in that order)."""
    mu = f.mean(0)
    sigma = f.std(0) + 1e-3
    z = torch.tensor((f - mu) / sigma, dtype=torch.float32)
    y = torch.tensor([classes.index(l) for l in labels])
    counts = np.bincount(y.numpy(), minlength=len(classes)).clip(1)
    class_weight = torch.tensor(len(y) / (len(classes) * counts), dtype=torch.float32)
    w = torch.zeros(z.shape[1], len(classes), requires_grad=True)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, y, weight=class_weight) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mu.astype(np.float32), sigma.astype(np.float32), w.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


def embed_np(mu, sigma, w, f: np.ndarray, bias: np.ndarray, temperature: float) -> np.ndarray:
    """What embedder.onnx computes, from raw features (numpy)."""
    e = (((f - mu) / sigma) @ w + bias) / temperature
    e = np.exp(e - e.max(1, keepdims=True))
    e = e / e.sum(1, keepdims=True)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def export_embedder(emb: Embedder, path: str, size=(160, 160), opset: int = 17) -> None:
    if isinstance(size, int):
        size = (size, size)
    emb.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # torch 1.13 says this of the head's constants; the parity tests check the export
        warnings.filterwarnings("ignore", message="The shape inference of prim::Constant type is missing")
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
    return Embedder(StyleFeatures(load_base(path)), w["embedder.mu"], w["embedder.sigma"], w["embedder.proj"], w["embedder.bias"],
                    float(w["embedder.temperature"].reshape(-1)[0])).eval()
