"""The retrieval half of a package: embedder.onnx and adapters/index.json, fitted on the
training stills of each condition (clear and every adapter's), never on compositions."""
from __future__ import annotations

import json
import os
from typing import Callable, Dict, List

import numpy as np

from . import data as D
from .embedder import Embedder, StyleFeatures, embed_np, export_embedder, fit_condition_head, fit_style_gate, raw_features
from .model import SegNet

# The head's softmax temperature. At 1 the head is so sure of the nearest single that a
# composition gets one component only at 1.0; at 2 the runner-up keeps a share, so cosine
# retrieval can still weigh it. Chosen on validation stills (seeds apart from training and
# from `streamseg eval`'s held-out videos): training/README.md, "Retrieval embedder".
HEAD_TEMPERATURE = 2.0
HEAD_L2 = 1e-3
# The style gate (embedder.py): a frame counts as the base condition once its whitened distance
# to the nearest training condition passes STYLE_GATE_FACTOR times the training stills' median
# distance, over a soft edge of STYLE_GATE_WIDTH times that median. Chosen on validation stills
# and videos (never training or eval seeds): compositions, which must keep their adapters, stay
# below it; sepia fog and snow, where every adapter is worse than the base, are far past it
# (training/README.md, "Style gate").
STYLE_GATE_FACTOR = 2.6
STYLE_GATE_WIDTH = 0.05


def fit_retrieval(net: SegNet, stills: Dict[str, List[D.Stills]], per_condition: int, seed: int, mean, std,
                  out_dir: str, export_size, log: Callable[[str], None]) -> dict:
    """Fits the condition head on ``per_condition`` stills of each training condition (every
    source size in proportion), writes ``embedder.onnx`` and ``adapters/index.json`` under
    ``out_dir``, and returns the manifest's ``embedder`` entry and the constants to keep
    beside the base weights."""
    feats = StyleFeatures(net)
    rng = np.random.default_rng(seed + 17)
    fs, labels = [], []
    for cond in D.TRAIN_CONDITIONS:
        total = sum(len(s) for s in stills[cond])
        for s in stills[cond]:
            # each bucket in proportion, so every input shape shapes the head
            k = max(1, int(round(per_condition * len(s) / total)))
            idx = np.sort(rng.choice(len(s), size=min(len(s), k), replace=False))
            fs.append(raw_features(feats, s.images[idx], mean, std))
            labels += [cond] * len(idx)
    f_all = np.concatenate(fs)
    classes = list(D.TRAIN_CONDITIONS)
    mu, sigma, w, b = fit_condition_head(f_all, labels, classes, l2=HEAD_L2)
    z_all = (f_all - mu) / sigma
    gate = fit_style_gate(z_all, labels, classes, factor=STYLE_GATE_FACTOR, width=STYLE_GATE_WIDTH, base="clear")
    emb = embed_np(mu, sigma, w, f_all, b, HEAD_TEMPERATURE, gate)
    export_embedder(Embedder(feats, mu, sigma, w, b, HEAD_TEMPERATURE, gate), os.path.join(out_dir, "embedder.onnx"), size=export_size)
    lab = np.array(labels)
    centroids = {}
    for cond in classes:
        c = emb[lab == cond].mean(0)
        centroids[cond] = c / np.linalg.norm(c)
    log(f"[embedder] condition head over {len(classes)} conditions, {f_all.shape[1]} features, T={HEAD_TEMPERATURE}; "
        f"train accuracy {np.mean(np.argmax(emb, 1) == np.array([classes.index(l) for l in labels])):.3f}; "
        f"style gate at distance {gate.threshold:.2f} ({STYLE_GATE_FACTOR} x the median), "
        f"{np.mean(gate.distances(z_all) > gate.threshold):.3%} of training stills past it")
    index = {
        "embedding": {"size": len(classes), "metric": "cosine", "dimensions": classes},
        # the base model's own domain: a scene nearest to it runs without adapters
        "base": {"condition": "clear", "centroids": [[round(float(v), 6) for v in centroids["clear"]]]},
        "adapters": [
            {"name": c, "path": c, "condition": c, "centroids": [[round(float(v), 6) for v in centroids[c]]]}
            for c in D.ADAPTER_CONDITIONS
        ],
    }
    os.makedirs(os.path.join(out_dir, "adapters"), exist_ok=True)
    with open(os.path.join(out_dir, "adapters", "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return {
        "manifest": {"file": "embedder.onnx", "input": "image", "output": "embedding", "size": len(classes)},
        "constants": {"embedder.mu": mu, "embedder.sigma": sigma, "embedder.proj": w, "embedder.bias": b,
                      "embedder.temperature": np.array([HEAD_TEMPERATURE], dtype=np.float32),
                      "embedder.whiten": gate.whiten, "embedder.means": gate.means,
                      "embedder.gate": np.array([gate.threshold, gate.width, gate.base_index], dtype=np.float32)},
    }
