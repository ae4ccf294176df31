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

The style gate: a scene unlike every training condition runs the base model. Its distance is
the whitened distance of z to the nearest condition mean (whitened by the pooled within-condition
covariance, so each direction counts by how much scenes of one condition vary along it); the
frame's probabilities move to the base condition by g = sigmoid((distance - threshold) / width),
so past the threshold its embedding lands on the base centroid and retrieval picks no adapter.
Why a distance and not the head's own confidence: the head is a linear classifier, and a style it
never saw (sepia, a re-tinted palette) still falls confidently on one side of its boundaries.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import List, Optional

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


@dataclass
class StyleGate:
    """The style gate's constants (see the module doc): z @ whiten is compared with the
    whitened condition means; past ``threshold`` (± ``width``) a frame counts as the base
    condition, column ``base_index`` of the head."""

    whiten: np.ndarray  # [d, d]
    means: np.ndarray  # [K, d], whitened
    threshold: float
    width: float
    base_index: int

    def distances(self, z: np.ndarray) -> np.ndarray:
        """Whitened distance of each z-scored feature row to the nearest condition mean."""
        w = z @ self.whiten
        return np.sqrt(np.min(((w[:, None, :] - self.means[None]) ** 2).sum(-1), axis=1))


def fit_style_gate(z: np.ndarray, labels: List[str], classes: List[str], factor: float, width: float, base: str,
                   ridge: float = 0.1) -> StyleGate:
    """Condition means and the pooled within-condition covariance (plus ``ridge`` on the
    diagonal: the z-scored features are correlated, some nearly collinear) of z-scored features;
    the threshold is ``factor`` and the soft edge ``width`` times the median distance of ``z``
    itself, so the gate means the same across presets and sample counts."""
    lab = np.array(labels)
    means = np.stack([z[lab == c].mean(0) for c in classes])
    within = sum((z[lab == c] - means[i]).T @ (z[lab == c] - means[i]) for i, c in enumerate(classes)) / len(z)
    values, vectors = np.linalg.eigh(within + ridge * np.eye(z.shape[1]))
    whiten = (vectors @ np.diag(values ** -0.5) @ vectors.T).astype(np.float32)
    gate = StyleGate(whiten, (means @ whiten).astype(np.float32), 0.0, 1.0, classes.index(base))
    median = float(np.median(gate.distances(z)))
    gate.threshold, gate.width = factor * median, width * median
    return gate


class Embedder(nn.Module):
    """Style features → condition probabilities (through the style gate when given),
    L2-normalised (retrieval is by cosine)."""

    def __init__(self, feats: StyleFeatures, mu: np.ndarray, sigma: np.ndarray, proj: np.ndarray, bias: np.ndarray, temperature: float,
                 gate: Optional[StyleGate] = None):
        super().__init__()
        self.feats = feats
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
        self.register_buffer("sigma", torch.tensor(sigma, dtype=torch.float32))
        self.register_buffer("proj", torch.tensor(proj, dtype=torch.float32))
        self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))
        self.temperature = float(temperature)
        self.gated = gate is not None
        if gate is not None:
            self.register_buffer("whiten", torch.tensor(gate.whiten, dtype=torch.float32))
            self.register_buffer("means", torch.tensor(gate.means, dtype=torch.float32))
            base = torch.zeros(len(bias))
            base[gate.base_index] = 1.0
            self.register_buffer("base", base)
            self.threshold = gate.threshold
            self.width = gate.width

    def _distance(self, z):
        w = z @ self.whiten
        return torch.sqrt(((w[:, None, :] - self.means[None]) ** 2).sum(-1).min(dim=1).values)

    def gate_distance(self, image):
        """The style gate's distance of each image (for checks and reports)."""
        return self._distance((self.feats(image) - self.mu) / self.sigma)

    def forward(self, image):
        z = (self.feats(image) - self.mu) / self.sigma
        p = torch.softmax((z @ self.proj + self.bias) / self.temperature, dim=1)
        if self.gated:
            g = torch.sigmoid((self._distance(z) - self.threshold) / self.width)[:, None]
            p = (1 - g) * p + g * self.base
        return F.normalize(p, dim=1)


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


def embed_np(mu, sigma, w, f: np.ndarray, bias: np.ndarray, temperature: float, gate: Optional[StyleGate] = None) -> np.ndarray:
    """What embedder.onnx computes, from raw features (numpy)."""
    z = (f - mu) / sigma
    e = (z @ w + bias) / temperature
    e = np.exp(e - e.max(1, keepdims=True))
    e = e / e.sum(1, keepdims=True)
    if gate is not None:
        g = 1.0 / (1.0 + np.exp(-(gate.distances(z) - gate.threshold) / gate.width))
        e = (1 - g)[:, None] * e
        e[:, gate.base_index] += g
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
    gate = None
    if "embedder.gate" in w:
        threshold, width, base_index = (float(v) for v in w["embedder.gate"].reshape(-1))
        gate = StyleGate(w["embedder.whiten"], w["embedder.means"], threshold, width, int(base_index))
    return Embedder(StyleFeatures(load_base(path)), w["embedder.mu"], w["embedder.sigma"], w["embedder.proj"], w["embedder.bias"],
                    float(w["embedder.temperature"].reshape(-1)[0]), gate).eval()
