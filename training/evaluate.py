#!/usr/bin/python3
"""Evaluate a model package on held-out synthetic stills.

  /usr/bin/python3 training/evaluate.py                       # models/default, 100 stills/condition
  /usr/bin/python3 training/evaluate.py --package DIR --count 40 --backend ort

Held-out stills are rendered with seeds from EVAL_SEED_BASE (never used in
training). Prints, per condition: mIoU of the base and of the condition's own
adapter, and nearest-centroid retrieval accuracy (embedder.onnx through ONNX
Runtime, centroids from adapters/index.json) on the single-condition images.
With --compositions it also scores held-out compositions (fog+night, ...) with
the base, each component adapter, and the retrieved cat-merge (top-2 by cosine
distance, softmax(-d/tau) weights), i.e. the method the workers run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

# idle OpenMP threads sleep instead of spinning (see build_package.py); before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from streamseg_train import data as D  # noqa: E402
from streamseg_train.model import CLASS_NAMES, load_base  # noqa: E402
from streamseg_train.ort import ort_run  # noqa: E402
from streamseg_train.safetensors_io import load_file  # noqa: E402
from streamseg_train.train import confusion, miou  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

COMPOSITIONS = ["fog+night", "rain+dusk", "snow+night"]


def load_adapter(pkg, manifest, name):
    d = os.path.join(pkg, manifest["adapters"]["dir"], name)
    with open(os.path.join(d, "adapter_config.json")) as f:
        cfg = json.load(f)
    w = load_file(os.path.join(d, "adapter_model.safetensors"))
    s = cfg["lora_alpha"] / cfg["r"]
    return {
        t["module"]: (w[f"base_model.model.{t['module']}.lora_A.weight"], w[f"base_model.model.{t['module']}.lora_B.weight"] * s)
        for t in manifest["lora"]["targets"]
    }


def cat_merge(adapters, weights):
    """Exact weighted merge: A = vstack(A_i), B = hstack(w_i * B_i) (scales already folded)."""
    out = {}
    for k in adapters[0]:
        out[k] = (np.vstack([a[k][0] for a in adapters]), np.hstack([w * a[k][1] for a, w in zip(adapters, weights)]))
    return out


class Runner:
    def __init__(self, pkg, backend):
        with open(os.path.join(pkg, "model.json")) as f:
            self.m = json.load(f)
        self.pkg = pkg
        self.backend = backend
        self.mean, self.std = self.m["input"]["mean"], self.m["input"]["std"]
        self.ce = np.array([c["embedding"] for c in self.m["classes"]], dtype=np.float32)
        self.net = load_base(os.path.join(pkg, "base_model.safetensors")) if backend == "torch" else None

    def segment(self, images: np.ndarray, lora=None) -> np.ndarray:
        if lora is None:
            lora = {t["module"]: (np.zeros((1, t["in"]), "f4"), np.zeros((t["out"], 1), "f4")) for t in self.m["lora"]["targets"]}
        preds = []
        for i in range(0, len(images), 50):
            x = D.to_tensor(images[i : i + 50], self.mean, self.std)
            if self.backend == "torch":
                tl = {k: (torch.from_numpy(np.ascontiguousarray(a, "f4")), torch.from_numpy(np.ascontiguousarray(b, "f4"))) for k, (a, b) in lora.items()}
                with torch.no_grad():
                    logits = self.net(x, torch.from_numpy(self.ce), tl).numpy()
            else:
                feeds = {"image": x.numpy(), "class_embeddings": self.ce}
                for t in self.m["lora"]["targets"]:
                    a, b = lora[t["module"]]
                    feeds[t["inputA"]] = a.astype("f4")
                    feeds[t["inputB"]] = b.astype("f4")
                logits = ort_run(os.path.join(self.pkg, self.m["model"]), feeds, chunk=("image", 10))["logits"]
            preds.append(logits.argmax(1).astype(np.uint8))
        return np.concatenate(preds)

    def embed(self, images: np.ndarray) -> np.ndarray:
        e = self.m["embedder"]
        x = D.to_tensor(images, self.mean, self.std).numpy()
        return ort_run(os.path.join(self.pkg, e["file"]), {e["input"]: x}, chunk=(e["input"], 25))[e["output"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=os.path.join(REPO, "models", "default"))
    ap.add_argument("--count", type=int, default=100, help="held-out stills per condition")
    ap.add_argument("--seed", type=int, default=D.EVAL_SEED_BASE, help="held-out seed base (training uses %d+)" % D.TRAIN_SEED_BASE)
    ap.add_argument("--backend", choices=["torch", "ort"], default="torch", help="segmentation backend (embedder always runs in ORT)")
    ap.add_argument("--compositions", action="store_true", help="also score held-out compositions with retrieval + merge")
    ap.add_argument("--tau", type=float, default=0.05, help="softmax temperature on cosine distance for merge weights")
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    ap.add_argument("--random-data", action="store_true", help="smoke test without the renderer")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.time()
    run = Runner(args.package, args.backend)
    size = run.m["input"]["width"]
    with open(os.path.join(args.package, run.m["adapters"]["index"])) as f:
        index = json.load(f)
    names = [a["name"] for a in index["adapters"]]
    cents = [np.array(a["centroids"], dtype=np.float64) for a in index["adapters"]]
    adapters = {a["name"]: load_adapter(args.package, run.m, a["path"]) for a in index["adapters"]}
    cond_of = {a["name"]: a.get("condition", a["name"]) for a in index["adapters"]}

    def stills_for(cond, salt):
        if args.random_data:
            return D.random_stills(args.count, size, seed=args.seed + salt, condition=cond)
        d = os.path.join(args.data_dir, f"eval_{size}", cond)
        D.render_stills(d, args.count, args.seed + D.CONDITION_SEED_STRIDE * salt, cond, size, log=lambda m: print(m, file=sys.stderr), heldout=True)
        return D.load_stills(d, limit=args.count)

    def nearest(emb):
        sims = np.stack([(emb @ c.T).max(1) for c in cents], 1)  # [N, adapters]
        return sims

    rows = []
    all_ok = True
    for salt, cond in enumerate(D.TRAIN_CONDITIONS):
        s = stills_for(cond, salt)
        base = miou(confusion(run.segment(s.images), s.masks))[0]
        own = None
        ad_name = next((n for n in names if cond_of[n] == cond), None)
        if ad_name:
            own = miou(confusion(run.segment(s.images, adapters[ad_name]), s.masks))[0]
        sims = nearest(run.embed(s.images))
        top = np.array(names)[sims.argmax(1)]
        acc = float(np.mean(top == ad_name)) if ad_name else None
        rows.append((cond, len(s), base, own, acc, float(sims.max(1).mean())))
    print()
    print(f"package: {os.path.relpath(args.package, REPO)}  backend: {args.backend}  held-out seeds from {args.seed}  ({args.count} stills/condition)")
    print(f"{'condition':<11}{'n':>5}{'base mIoU':>11}{'adapter mIoU':>14}{'gain':>8}{'retrieval':>11}{'max cos':>9}")
    for cond, n, base, own, acc, mc in rows:
        gain = f"{100 * (own - base):+.1f}" if own is not None else "-"
        print(f"{cond:<11}{n:>5}{base:>11.3f}{(f'{own:.3f}' if own is not None else '-'):>14}{gain:>8}"
              f"{(f'{100 * acc:.1f}%' if acc is not None else '-'):>11}{mc:>9.3f}")
        if cond == "clear" and base < 0.70:
            all_ok = False
        if own is not None and (own - base) < 0.10:
            all_ok = False
        if acc is not None and acc < 0.95:
            all_ok = False
    accs = [r[4] for r in rows if r[4] is not None]
    print(f"retrieval accuracy over {len(accs)} adapter conditions: {100 * np.mean(accs):.1f}%")
    print("targets (clear base >= 0.70, own adapter >= +10 pts, retrieval >= 95%):", "MET" if all_ok else "NOT MET")

    if args.compositions:
        print()
        print(f"compositions (held out, never trained on); merge = cat of top-2 retrieved, softmax(-d/{args.tau})")
        hdr = f"{'condition':<12}{'base':>7}" + "".join(f"{n:>8}" for n in names) + f"{'merged':>8}  retrieved (mean weights)"
        print(hdr)
        for j, comp in enumerate(COMPOSITIONS):
            s = stills_for(comp, 10 + j)
            base = miou(confusion(run.segment(s.images), s.masks))[0]
            singles = [miou(confusion(run.segment(s.images, adapters[n]), s.masks))[0] for n in names]
            emb = run.embed(s.images)
            # per-image retrieval + merge (as a worker does per scene)
            sims = nearest(emb)
            preds = np.empty_like(s.masks)
            wsum = {}
            for i in range(len(s)):
                order = np.argsort(-sims[i])[:2]
                d = 1.0 - sims[i][order]
                w = np.exp(-(d - d.min()) / args.tau)
                w = w / w.sum()
                for o, ww in zip(order, w):
                    wsum[names[o]] = wsum.get(names[o], 0.0) + ww / len(s)
                lora = cat_merge([adapters[names[o]] for o in order], w)
                preds[i] = run.segment(s.images[i : i + 1], lora)[0]
            merged = miou(confusion(preds, s.masks))[0]
            ws = ", ".join(f"{k} {v:.2f}" for k, v in sorted(wsum.items(), key=lambda kv: -kv[1]))
            print(f"{comp:<12}{base:>7.3f}" + "".join(f"{v:>8.3f}" for v in singles) + f"{merged:>8.3f}  {ws}")
    print(f"\n(evaluated in {time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
