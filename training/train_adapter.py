"""`streamseg adapters train --model DIR --from VIDEO|FRAMES_DIR [--labels MASKS_DIR] --name N`
(called by src/cli/commands/adapters-train.ts).

Trains LoRA A/B for an imported model package (streamseg model import) on the package's own
graph: model.onnx runs under torch (streamseg_import/torch_onnx.py) with the LoRA graph inputs
as the only trainable tensors, so what is trained is exactly what the workers run.

- With --labels: supervised cross-entropy (mask PNGs of class indices, 255 = ignore).
- Without: self-training (seed 002). The teacher (the base model, or an EMA of the student's
  LoRA) labels each frame; pixels whose softmax confidence is below the threshold (per class:
  the lower of --threshold and that class's --class-quantile of confidences) are ignored; the
  student sees a photometrically jittered view and trains LoRA only. By default the teacher is the
  EMA of the student and sees each frame normalised (per-channel mean/std set to the model's input
  normalisation), which measured best (docs/BRING-YOUR-OWN-MODEL.md).

Writes DIR/adapters/<name>/adapter_config.json + adapter_model.safetensors (PEFT layout:
base_model.model.<module>.lora_A.weight [r, C, kh, kw] for convs, [r, in] for Gemm/MatMul;
lora_B [out, r, 1, 1] / [out, r]), training.json (loss curve, timing), and the domain centroid
(mean embedding of the footage) into DIR/adapters/index.json. Prints one JSON line on stdout
at the end; progress and the time estimate go to stderr. Errors: `E_CODE: message`, exit 2.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from streamseg_import import ImportError_ as TrainError  # noqa: E402

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def log(s: str) -> None:
    sys.stderr.write(s + "\n")
    sys.stderr.flush()


# --- model input plan (src/shared/model-input-plan.ts) ------------------------------------
def plan_input(inp: dict, sw: int, sh: int):
    """(width, height, rect x, y, w, h) of the model input for a sw×sh source."""
    fit = inp.get("fit")
    if fit:
        scale = math.sqrt(fit["pixels"] / (sw * sh))
        if sw * sh < fit["pixels"]:
            scale = max(scale, fit.get("smallSourceScale", 1))

        def side(n):
            return min(fit["maxSide"], max(fit["stride"] * 2, int(math.floor(n * scale / fit["stride"] + 0.5)) * fit["stride"]))

        w, h = side(sw), side(sh)
        return w, h, (0, 0, w, h)
    W, H = inp["width"], inp["height"]
    s = min(W / sw, H / sh)
    cw, ch = max(1, round(sw * s)), max(1, round(sh * s))
    return W, H, ((W - cw) // 2, (H - ch) // 2, cw, ch)


def _probe(path: str) -> dict:
    try:
        res = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,nb_frames,avg_frame_rate:format=duration",
                              "-of", "json", path], capture_output=True, text=True)
    except FileNotFoundError:
        raise TrainError("E_TRAIN_FFMPEG", "ffprobe is not installed (install ffmpeg)")
    if res.returncode != 0:
        raise TrainError("E_TRAIN_INPUT", f"{path}: not a readable video or image ({(res.stderr.strip().splitlines() or ['ffprobe failed'])[-1]})")
    info = json.loads(res.stdout)
    if not info.get("streams"):
        raise TrainError("E_TRAIN_INPUT", f"{path}: has no video stream")
    return {**info["streams"][0], "duration": float(info.get("format", {}).get("duration") or 0)}


def _scale_filter(w: int, h: int, rect) -> str:
    x, y, cw, ch = rect
    f = f"scale={cw}:{ch}:flags=bilinear"
    if (cw, ch) != (w, h):
        f += f",pad={w}:{h}:{x}:{y}:black"
    return f


def _decode(path: str, vf: str, w: int, h: int) -> np.ndarray:
    res = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-vf", vf, "-vsync", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True)
    if res.returncode != 0:
        raise TrainError("E_TRAIN_INPUT", f"{path}: ffmpeg cannot decode it ({(res.stderr.decode(errors='replace').strip().splitlines() or ['?'])[-1]})")
    n = len(res.stdout) // (w * h * 3)
    return np.frombuffer(res.stdout[: n * w * h * 3], np.uint8).reshape(n, h, w, 3).copy()


def _nearest(mask: np.ndarray, w: int, h: int, rect) -> np.ndarray:
    x, y, cw, ch = rect
    sh, sw = mask.shape
    ys = np.minimum(sh - 1, ((np.arange(ch) + 0.5) * sh / ch).astype(np.int64))
    xs = np.minimum(sw - 1, ((np.arange(cw) + 0.5) * sw / cw).astype(np.int64))
    out = np.full((h, w), 255, np.uint8)
    out[y : y + ch, x : x + cw] = mask[ys][:, xs]
    return out


def _read_mask(path: str) -> np.ndarray:
    from streamseg_train.data import read_png

    try:
        m = read_png(path, channels=1)
    except Exception as e:
        raise TrainError("E_TRAIN_LABELS", f"{path}: not a readable 8-bit PNG class mask ({e})")
    return m[..., 0] if m.ndim == 3 else m


def load_footage(src: str, inp: dict, max_frames: int, labels_dir=None):
    """uint8 frames [N,H,W,3] at the model input size, masks [N,H,W] or None, rect, frame names."""
    if not os.path.exists(src):
        raise TrainError("E_TRAIN_INPUT", f"{src}: no such file or directory")
    if os.path.isdir(src):
        files = sorted(f for f in glob.glob(os.path.join(src, "*")) if f.lower().endswith(IMAGE_EXT))
        if not files:
            raise TrainError("E_TRAIN_INPUT", f"{src}: no images ({', '.join(IMAGE_EXT)}) in this directory")
        if len(files) > max_frames:
            files = [files[int(i)] for i in np.linspace(0, len(files) - 1, max_frames)]
        p = _probe(files[0])
        w, h, rect = plan_input(inp, int(p["width"]), int(p["height"]))
        frames = np.concatenate([_decode(f, _scale_filter(w, h, rect), w, h)[:1] for f in files])
        names = [os.path.splitext(os.path.basename(f))[0] for f in files]
        keys = names
    else:
        p = _probe(src)
        w, h, rect = plan_input(inp, int(p["width"]), int(p["height"]))
        total = int(p.get("nb_frames") or 0)
        if total <= 0:
            num, _, den = str(p.get("avg_frame_rate", "0/1")).partition("/")
            fps = float(num) / float(den or 1) if float(den or 1) else 0
            total = max(1, int(round(p["duration"] * fps)))
        step = max(1, int(math.ceil(total / max_frames)))
        frames = _decode(src, f"select=not(mod(n\\,{step})),{_scale_filter(w, h, rect)}", w, h)
        if len(frames) == 0:
            raise TrainError("E_TRAIN_INPUT", f"{src}: no frames decoded")
        keys = [f"{i * step:06d}" for i in range(len(frames))]
        names = keys
    masks = None
    if labels_dir:
        if not os.path.isdir(labels_dir):
            raise TrainError("E_TRAIN_LABELS", f"--labels {labels_dir}: not a directory of mask PNGs")
        masks = []
        for k in keys:
            f = os.path.join(labels_dir, f"{k}.png")
            if not os.path.exists(f):
                raise TrainError("E_TRAIN_LABELS", f"--labels: {f} is missing (one PNG per frame, named like the frame{' index, 6 digits' if not os.path.isdir(src) else ''})")
            masks.append(_nearest(_read_mask(f), w, h, rect))
        masks = np.stack(masks)
    return frames, masks, rect, names


def footage_centroid(model_dir: str, manifest: dict, frames: np.ndarray, rect, threads: int = 1) -> list:
    """Mean embedding of the frames, L2-normalised (letterbox bars cropped, as the workers do)."""
    from streamseg_train.ort import ort_run

    x0, y0, cw, ch = rect
    crop = np.ascontiguousarray(frames[:, y0 : y0 + ch, x0 : x0 + cw]).astype(np.float32) / 255.0
    inp = manifest["input"]
    x = ((crop - np.array(inp["mean"], np.float32)) / np.array(inp["std"], np.float32)).transpose(0, 3, 1, 2)
    spec = manifest["embedder"]
    emb = ort_run(os.path.join(model_dir, spec["file"]), {spec["input"]: np.ascontiguousarray(x)}, chunk=(spec["input"], 16), threads=threads)[spec["output"]]
    c = emb.astype(np.float64).mean(0)
    return (c / max(1e-12, np.linalg.norm(c))).round(6).tolist()


# --- training -------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="streamseg adapters train")
    ap.add_argument("--model", required=True)
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--labels")
    ap.add_argument("--name", required=True)
    ap.add_argument("--condition")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--targets", help="regex on LoRA target module names (default: all)")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seconds", type=float, help="stop after this many seconds of training (whichever comes first)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-frames", type=int, default=64)
    ap.add_argument("--teacher", choices=["base", "ema"], default="ema")
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--teacher-view", choices=["raw", "normalized"], default="normalized",
                    help="normalized: the teacher sees each frame with its per-channel mean/std set to the model's input normalisation (undoes haze/darkness in part)")
    ap.add_argument("--class-quantile", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="replace an existing adapter of that name")
    ap.add_argument("--no-index", action="store_true", help="do not add the adapter to adapters/index.json")
    a = ap.parse_args(argv)
    try:
        return run(a)
    except TrainError as e:
        sys.stderr.write(f"{e.code}: {e.message}\n")
        return 2


def run(a) -> int:
    import onnx
    import torch
    import torch.nn.functional as F

    from streamseg_import.torch_onnx import OnnxTorch
    from streamseg_train.safetensors_io import save_file

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t_start = time.time()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", a.name):
        raise TrainError("E_TRAIN_OPTIONS", f"--name \"{a.name}\": use letters, digits, _ . - (at most 64)")
    mpath = os.path.join(a.model, "model.json")
    try:
        with open(mpath) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise TrainError("E_TRAIN_MODEL", f"{mpath}: cannot read the model package ({e})")
    if not manifest.get("adapters") or not manifest.get("embedder"):
        raise TrainError("E_TRAIN_MODEL", f"{mpath} has no adapters index or embedder: train adapters for packages made by `streamseg model import` (or with both)")
    adapters_dir = os.path.join(a.model, manifest["adapters"]["dir"])
    out_dir = os.path.join(adapters_dir, a.name)
    if os.path.exists(os.path.join(out_dir, "adapter_model.safetensors")) and not a.force:
        raise TrainError("E_TRAIN_EXISTS", f"{out_dir} already holds an adapter (give --force to replace it)")
    inp = manifest["input"]
    layers = manifest.get("imported", {}).get("loraLayers", {})
    targets = [t for t in manifest["lora"]["targets"] if not a.targets or re.search(a.targets, t["module"])]
    if not targets:
        raise TrainError("E_TRAIN_OPTIONS", f"--targets {a.targets!r} matches no LoRA target of the model")
    max_rank = manifest["lora"].get("maxRank")
    if a.rank < 1 or (max_rank and a.rank > max_rank):
        raise TrainError("E_TRAIN_OPTIONS", f"--rank {a.rank}: must be 1..{max_rank or '∞'}")
    k = manifest["classEmbeddings"]["dim"]

    frames, masks, rect, names = load_footage(a.src, inp, a.max_frames, a.labels)
    n, h, w, _ = frames.shape
    mode = "supervised" if masks is not None else f"self-training (teacher: {a.teacher})"
    log(f"{len(frames)} frames of {a.src} at {w}x{h}; {mode}; LoRA rank {a.rank} on {len(targets)} layers")

    net = OnnxTorch(onnx.load(os.path.join(a.model, manifest["model"])))
    mean = torch.tensor(inp["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(inp["std"]).view(1, 3, 1, 1)
    eye = torch.eye(k)
    img_name, out_name, cls_name = inp["name"], manifest["output"]["name"], manifest["classEmbeddings"]["input"]
    alpha = a.alpha if a.alpha else float(a.rank)
    scaling = alpha / a.rank
    params = {}
    for t in targets:
        A = torch.empty(a.rank, t["in"]).uniform_(-1 / math.sqrt(t["in"]), 1 / math.sqrt(t["in"]))
        params[t["module"]] = (A.requires_grad_(), torch.zeros(t["out"], a.rank, requires_grad=True))
    zero = {}
    for t in manifest["lora"]["targets"]:
        zero[t["inputA"]] = torch.zeros(1, t["in"])
        zero[t["inputB"]] = torch.zeros(t["out"], 1)
    ema = {m: (A.detach().clone(), B.detach().clone()) for m, (A, B) in params.items()}

    def feeds(weights):
        f = dict(zero)
        for t in targets:
            A, B = weights[t["module"]]
            f[t["inputA"]] = A
            f[t["inputB"]] = B * scaling
        return f

    def forward(x, weights):
        return net({img_name: x, cls_name: eye, **(feeds(weights) if weights else zero)}, [out_name])[out_name]

    def to_input(u8):
        return (torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    def jitter(u8):
        x = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float() / 255.0
        b = x.shape[0]
        gain = torch.from_numpy(rng.uniform(0.75, 1.25, (b, 1, 1, 1))).float()
        bias = torch.from_numpy(rng.uniform(-0.08, 0.08, (b, 1, 1, 1))).float()
        x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) * gain + x.mean(dim=(1, 2, 3), keepdim=True) + bias
        x = x + torch.randn_like(x) * 0.02
        return (x.clamp(0, 1) - mean) / std

    opt = torch.optim.AdamW([p for pair in params.values() for p in pair], lr=a.lr, weight_decay=0.0)
    losses, kept_log = [], []
    step_times = []
    announced = False
    step = 0
    while step < a.steps and not (a.seconds and time.time() - t_start > a.seconds):
        t0 = time.time()
        idx = rng.integers(0, n, a.batch)
        u8 = frames[idx]
        flip = rng.random() < 0.5
        if flip:
            u8 = u8[:, :, ::-1]
        if masks is not None:
            y = torch.from_numpy(np.ascontiguousarray(masks[idx][:, :, ::-1] if flip else masks[idx]).astype(np.int64))
            x = to_input(u8)
            kept = float((y != 255).float().mean())
        else:
            with torch.no_grad():
                tx = to_input(u8)
                if a.teacher_view == "normalized":
                    tx = (tx - tx.mean(dim=(2, 3), keepdim=True)) / tx.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
                tl = forward(tx, ema if a.teacher == "ema" else None)
                prob = torch.softmax(tl, 1)
                conf, y = prob.max(1)
                thr = torch.full((k,), a.threshold)
                for c in range(k):
                    sel = conf[y == c]
                    if sel.numel() > 0:
                        thr[c] = min(a.threshold, float(torch.quantile(sel[: 200000], a.class_quantile)))
                keep = conf >= thr[y]
                y = torch.where(keep, y, torch.full_like(y, 255))
                kept = float(keep.float().mean())
            x = jitter(u8)
        logits = forward(x, params)
        if logits.shape[2:] != y.shape[1:]:
            raise TrainError("E_TRAIN_MODEL", f"logits are {list(logits.shape)} for a {w}x{h} input; expected the input's size")
        loss = F.cross_entropy(logits, y, ignore_index=255) if (y != 255).any() else logits.sum() * 0
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for m, (A, B) in params.items():
                ea, eb = ema[m]
                ea.mul_(a.ema).add_(A.detach(), alpha=1 - a.ema)
                eb.mul_(a.ema).add_(B.detach(), alpha=1 - a.ema)
        step += 1
        losses.append(float(loss))
        kept_log.append(kept)
        step_times.append(time.time() - t0)
        if step == 3 and not announced:
            per = float(np.median(step_times))
            total = a.steps if not a.seconds else min(a.steps, int(a.seconds / per))
            log(f"≈ {per:.2f} s/step on this machine ({a.threads} thread{'s' if a.threads > 1 else ''}): {total} steps ≈ {per * total / 60:.1f} min")
            announced = True
        if step % 10 == 0 or step == a.steps:
            per = float(np.mean(step_times[-10:]))
            log(f"step {step}/{a.steps} loss {np.mean(losses[-10:]):.4f} kept {100 * np.mean(kept_log[-10:]):.0f}% ({per:.2f} s/step, {per * (a.steps - step):.0f} s left)")

    # Save the PEFT layout (scaling stays in the config: lora_alpha / r).
    os.makedirs(out_dir, exist_ok=True)
    tensors = {}
    for t in targets:
        A, B = (p.detach().numpy().astype(np.float32) for p in params[t["module"]])
        info = layers.get(t["module"], {})
        key = f"base_model.model.{t['module']}"
        if info.get("op") == "Conv":
            kh, kw = info.get("kernel", [1, 1])
            tensors[f"{key}.lora_A.weight"] = A.reshape(a.rank, info["channels"], kh, kw)
            tensors[f"{key}.lora_B.weight"] = B.reshape(t["out"], a.rank, 1, 1)
        else:
            tensors[f"{key}.lora_A.weight"] = A
            tensors[f"{key}.lora_B.weight"] = B
    save_file(tensors, os.path.join(out_dir, "adapter_model.safetensors"), {"format": "pt"})
    config = {"peft_type": "LORA", "r": a.rank, "lora_alpha": alpha, "target_modules": [t["module"] for t in targets], "lora_dropout": 0.0,
              "bias": "none", "fan_in_fan_out": False, "base_model_name_or_path": manifest.get("name"), "task_type": None}
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=1)

    centroid = footage_centroid(a.model, manifest, frames, rect, a.threads)

    # How much the adapter moves the model on this footage (argmax pixels changed).
    with torch.no_grad():
        probe = to_input(frames[: min(4, n)])
        changed = float((forward(probe, params).argmax(1) != forward(probe, None).argmax(1)).float().mean())
    head, tail = losses[: max(1, min(10, len(losses) // 4))], losses[-max(1, min(10, len(losses) // 4)) :]
    report = {
        "name": a.name, "mode": "supervised" if masks is not None else "self-training", "teacher": None if masks is not None else a.teacher, "teacherView": None if masks is not None else a.teacher_view,
        "frames": int(n), "input": [w, h], "rank": a.rank, "alpha": alpha, "targets": len(targets), "steps": step,
        "seconds": round(time.time() - t_start, 1), "secondsPerStep": round(float(np.mean(step_times)), 3) if step_times else None,
        "lossFirst": round(float(np.mean(head)), 5) if losses else None, "lossLast": round(float(np.mean(tail)), 5) if losses else None,
        "keptFraction": round(float(np.mean(kept_log)), 4) if kept_log else None, "pixelsChanged": round(changed, 5),
        "losses": [round(v, 5) for v in losses], "from": os.path.abspath(a.src), "labels": os.path.abspath(a.labels) if a.labels else None,
    }
    with open(os.path.join(out_dir, "training.json"), "w") as f:
        json.dump(report, f, indent=1)
    if not a.no_index:
        ipath = os.path.join(a.model, manifest["adapters"]["index"])
        with open(ipath) as f:
            index = json.load(f)
        entry = {"name": a.name, "path": a.name, **({"condition": a.condition} if a.condition else {}), "centroids": [centroid]}
        index["adapters"] = [e for e in index.get("adapters", []) if e.get("name") != a.name] + [entry]
        tmp = ipath + ".tmp"
        with open(tmp, "w") as f:
            json.dump(index, f, indent=1)
        os.replace(tmp, ipath)
    print(json.dumps({"ok": True, "adapter": out_dir, "centroid": centroid, **{k2: v for k2, v in report.items() if k2 != "losses"}}))
    log(f"adapter {a.name} → {out_dir}: {step} steps in {report['seconds']} s, loss {report['lossFirst']} → {report['lossLast']}, "
        f"{100 * changed:.1f}% of pixels change class on its footage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
