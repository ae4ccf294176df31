"""Synthetic stills: rendering (via `streamseg synth --stills`), loading, batching."""
from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Conditions the package may be trained on. Compositions (fog+night, ...) are
# held-out targets and must never be rendered for training.
TRAIN_CONDITIONS = ["clear", "fog", "night", "rain", "snow", "dusk"]
ADAPTER_CONDITIONS = ["fog", "night", "rain", "snow", "dusk"]

# Seed ranges: training stills and held-out evaluation stills never share a seed.
TRAIN_SEED_BASE = 1_000_000
# `streamseg eval` renders its held-out videos from here (src/eval/eval-videos.ts DEFAULT_EVAL_SEED)
EVAL_SEED_BASE = 7_300_001
CONDITION_SEED_STRIDE = 100_000


def condition_seed(base: int, condition: str) -> int:
    return base + CONDITION_SEED_STRIDE * (TRAIN_CONDITIONS.index(condition) if condition in TRAIN_CONDITIONS else 50)


# How the shipped model takes frames (model.json input.fit; src/shared/model-input-plan.ts):
# aspect preserved at about PIXELS pixels, sides rounded to STRIDE, at most MAX_SIDE; a
# source under the budget scaled by at least SMALL_SOURCE_SCALE (160x160 -> 224x224).
FIT_PIXELS = 224 * 128
FIT_STRIDE = 16
FIT_MAX_SIDE = 448
FIT_SMALL_SOURCE_SCALE = 1.4
MODEL_INPUT = f"fit:{FIT_PIXELS}:{FIT_STRIDE}:{FIT_MAX_SIDE}:{FIT_SMALL_SOURCE_SCALE}"


def stills_dir_name(sw: int, sh: int) -> str:
    """Cache folder of one source size; sizes the small-source rule upscales name their input
    size too, so stills rendered before that rule are not reused."""
    return f"{sw}x{sh}" if sw * sh >= FIT_PIXELS else f"{sw}x{sh}-small{FIT_SMALL_SOURCE_SCALE}"

# The source sizes training stills are rendered at, with their share of each condition's
# stills: users' aspect ratios (16:9, 4:3, portrait, square) and their sizes. Effects scale
# with the frame (src/synth/effects/pixel-unit.ts), but the scene's fine detail does not:
# a 1280x720 or 768x576 render shrunk 4-6x to the model input is sharper than a small one,
# and a base that never saw such frames scored 5-10 points lower on them (eval of
# 2026-12-01), so every size `streamseg eval` scores is here.
# Append new sizes at the end: a size's seed follows its index (data.training_stills).
TRAIN_SOURCES = [
    ((320, 180), 0.20),
    ((640, 360), 0.10),
    ((256, 192), 0.10),
    ((384, 288), 0.05),
    ((180, 320), 0.10),
    ((208, 208), 0.10),
    ((1280, 720), 0.10),
    ((768, 576), 0.10),
    ((360, 640), 0.05),
    ((160, 160), 0.10),
]
TINY_SOURCES = [((320, 180), 0.5), ((180, 320), 0.5)]


def source_counts(total: int, sources) -> list:
    """Splits ``total`` stills over ``sources`` by share (every source gets at least one)."""
    counts = [max(1, int(round(total * share))) for _, share in sources]
    counts[0] += total - sum(counts)
    return [(size, max(1, n)) for (size, _), n in zip(sources, counts)]


def render_stills(out_dir: str, count: int, seed: int, condition: str, size=(160, 160), log=print, heldout: bool = False,
                  model_input: str = MODEL_INPUT) -> None:
    """Render ``count`` stills of one condition with the project's own renderer, at the
    source ``size`` (w, h), passed through the producer's resizer to the model input
    (``streamseg synth --stills --model-input``): train as you serve.

    ``heldout=True`` is only for evaluation sets; it is the sole way to render a
    composition such as ``fog+night``.
    """
    if isinstance(size, int):
        size = (size, size)
    if "+" in condition and not heldout:
        raise ValueError(f"composition {condition!r} is a held-out target; never render it for training")
    if os.path.exists(os.path.join(out_dir, "meta.jsonl")):
        with open(os.path.join(out_dir, "meta.jsonl")) as f:
            if sum(1 for _ in f) >= count:
                log(f"[synth] reuse {out_dir}")
                return
    os.makedirs(out_dir, exist_ok=True)
    # `node --import tsx` rather than `npx tsx`: same CLI, same output, without
    # npm's own start-up (seconds per call on a loaded machine)
    cmd = [
        "node", "--import", "tsx", "src/cli/main.ts", "synth", "--stills", os.path.abspath(out_dir), "--count", str(count),
        "--size", f"{size[0]}x{size[1]}", "--seed", str(seed), "--conditions", condition,
    ]
    if model_input:
        cmd += ["--model-input", model_input]
    t = time.time()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"synth failed: {' '.join(cmd)}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    log(f"[synth] {condition} x{count} seed={seed} -> {out_dir} ({time.time() - t:.1f}s)")


def training_stills(data_dir: str, sources, n_clear: int, n_cond: int, seed: int, log=print) -> Dict[str, List["Stills"]]:
    """Each training condition's stills, one Stills per source size: rendered into
    ``data_dir`` (a cache, reused when complete) with training seeds, then loaded."""
    stills: Dict[str, List[Stills]] = {}
    for cond in TRAIN_CONDITIONS:
        stills[cond] = []
        for si, ((sw, sh), count) in enumerate(source_counts(n_clear if cond == "clear" else n_cond, sources)):
            d = os.path.join(data_dir, f"train_fit{FIT_PIXELS}_s{seed}", cond, stills_dir_name(sw, sh))
            render_stills(d, count, condition_seed(TRAIN_SEED_BASE, cond) + seed * 10_000 + si * 1_000, cond, (sw, sh), log=log)
            stills[cond].append(load_stills(d, limit=count))
        log(f"[data] {cond}: " + ", ".join(f"{s.images.shape[2]}x{s.images.shape[1]}:{len(s)}" for s in stills[cond]))
    return stills


@dataclass
class Stills:
    images: np.ndarray  # uint8 [N,H,W,3]
    masks: np.ndarray  # uint8 [N,H,W]
    meta: List[dict]

    def __len__(self):
        return len(self.images)

    def subset(self, idx) -> "Stills":
        idx = np.asarray(idx)
        return Stills(self.images[idx], self.masks[idx], [self.meta[i] for i in idx])

    @staticmethod
    def concat(parts: List["Stills"]) -> "Stills":
        return Stills(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.masks for p in parts]),
            [m for p in parts for m in p.meta],
        )


def _unfilter(raw: bytes, h: int, row: int, bpp: int) -> np.ndarray:
    """Undo PNG scanline filters (None/Sub/Up/Average/Paeth) -> uint8 [h, row]."""
    data = np.frombuffer(raw, np.uint8).reshape(h, row + 1)
    out = np.zeros((h, row), np.uint8)
    prev = np.zeros(row, np.int32)
    for y in range(h):
        ft, line = int(data[y, 0]), data[y, 1:].astype(np.int32)
        if ft == 0:
            cur = line
        elif ft == 2:
            cur = (line + prev) & 255
        elif ft == 1:  # Sub: running sum per byte position modulo bpp
            cur = (np.cumsum(line.reshape(-1, bpp), axis=0) & 255).reshape(-1)
        elif ft in (3, 4):
            cur = np.zeros(row, np.int32)
            for x in range(row):
                a = int(cur[x - bpp]) if x >= bpp else 0
                b = int(prev[x])
                if ft == 3:
                    p = (a + b) >> 1
                else:
                    c = int(prev[x - bpp]) if x >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (int(line[x]) + p) & 255
        else:
            raise ValueError(f"bad PNG filter type {ft}")
        out[y] = cur
        prev = cur
    return out


def read_png(path: str, channels: int) -> np.ndarray:
    """8-bit greyscale/RGB/RGBA PNG -> uint8 [H,W,3] (channels=3) or [H,W] (channels=1).

    Uses Pillow when it is installed; otherwise a small zlib decoder of the
    non-interlaced 8-bit PNGs the renderer writes (CI installs no Pillow).
    """
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB" if channels == 3 else "L"))
    import struct
    import zlib

    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    i, idat, hdr = 8, [], None
    while i < len(b):
        (n,) = struct.unpack(">I", b[i : i + 4])
        t = b[i + 4 : i + 8]
        if t == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", b[i + 8 : i + 8 + 13])
        elif t == b"IDAT":
            idat.append(b[i + 8 : i + 8 + n])
        elif t == b"IEND":
            break
        i += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    src_ch = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or interlace != 0 or src_ch is None:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace}); install python3-pil")
    px = _unfilter(zlib.decompress(b"".join(idat)), h, w * src_ch, src_ch).reshape(h, w, src_ch)
    if channels == 1:
        if src_ch in (1, 2):
            return np.ascontiguousarray(px[..., 0])
        c = px[..., :3].astype(np.uint32)  # Pillow's RGB -> L (ITU-R 601-2, fixed point)
        return ((c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)
    if src_ch in (1, 2):
        return np.ascontiguousarray(np.repeat(px[..., :1], 3, axis=2))
    return np.ascontiguousarray(px[..., :3])


def load_stills(d: str, limit: Optional[int] = None) -> Stills:
    """Load DIR/images/*.png, DIR/masks/*.png, DIR/meta.jsonl (cached as .npy)."""
    cache_i = os.path.join(d, "images.npy")
    cache_m = os.path.join(d, "masks.npy")
    with open(os.path.join(d, "meta.jsonl")) as f:
        meta = [json.loads(l) for l in f if l.strip()]
    if limit is not None:
        meta = meta[:limit]
    if os.path.exists(cache_i) and os.path.exists(cache_m):
        imgs = np.load(cache_i, mmap_mode="r")
        if len(imgs) >= len(meta):
            return Stills(np.ascontiguousarray(imgs[: len(meta)]), np.ascontiguousarray(np.load(cache_m)[: len(meta)]), meta)
    imgs, masks = [], []
    for m in meta:
        iid = m["id"]
        name = iid if str(iid).endswith(".png") else f"{iid}.png"
        if isinstance(iid, int) or str(iid).isdigit():
            name = f"{int(iid):06d}.png"
        imgs.append(read_png(os.path.join(d, "images", name), channels=3))
        masks.append(read_png(os.path.join(d, "masks", name), channels=1))
    imgs = np.stack(imgs).astype(np.uint8)
    masks = np.stack(masks).astype(np.uint8)
    np.save(cache_i, imgs)
    np.save(cache_m, masks)
    return Stills(imgs, masks, meta)


def random_stills(n: int, size: int = 160, seed: int = 0, condition: str = "clear", num_classes: int = 8) -> Stills:
    """Stand-in data for smoke tests: blocky masks, images coloured by class + noise."""
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, num_classes, size=(n, size // 16, size // 16)).repeat(16, 1).repeat(16, 2).astype(np.uint8)
    palette = rng.integers(0, 255, size=(num_classes, 3))
    imgs = palette[masks] + rng.normal(0, 20, size=masks.shape + (3,))
    if condition == "night":
        imgs = imgs * 0.3
    elif condition == "fog":
        imgs = imgs * 0.4 + 150
    imgs = np.clip(imgs, 0, 255).astype(np.uint8)
    meta = [{"id": i, "condition": condition, "seed": seed + i} for i in range(n)]
    return Stills(imgs, masks, meta)


def to_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 [N,H,W,3] -> normalised float [N,3,H,W] ((x/255 - mean)/std)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


class BucketBatcher:
    """Minibatches from stills of several model input sizes (one size per batch, drawn in
    proportion to each bucket's stills), each with flip + aspect-preserving random crops
    rescaled to the bucket's size, so the network trains on every input shape it serves."""

    def __init__(self, buckets: List[Stills], batch: int, mean, std, seed: int, augment: bool = True, scale=(0.5, 1.0), color: float = 0.0,
                 lighting: float = 0.0):
        self.buckets = [b for b in buckets if len(b) > 0]
        sizes = np.array([len(b) for b in self.buckets], np.float64)
        self.p = sizes / sizes.sum()
        self.rng = np.random.default_rng(seed)
        self.batchers = [
            Batcher(b, batch, mean, std, seed + 7919 * i, (b.images.shape[1], b.images.shape[2]), augment=augment, scale=scale, color=color,
                    lighting=lighting)
            for i, b in enumerate(self.buckets)
        ]

    def next(self):
        return self.batchers[int(self.rng.choice(len(self.batchers), p=self.p))].next()


class Batcher:
    """Random minibatches with flip + random-resized-crop augmentation."""

    def __init__(self, stills: Stills, batch: int, mean, std, seed: int, size: int, augment: bool = True, scale=(0.5, 1.0), color: float = 0.0,
                 lighting: float = 0.0):
        self.s = stills
        self.batch = batch
        self.mean, self.std = mean, std
        self.rng = np.random.default_rng(seed)
        # (height, width) of the batches; an int means square
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.augment = augment
        self.scale = scale
        self.color = color
        # probability of a random change of light per image (gain, gamma, tint in pixel space)
        self.lighting = lighting
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def next(self):
        idx = self.rng.integers(0, len(self.s), self.batch)
        img = to_tensor(self.s.images[idx], self.mean, self.std)
        msk = torch.from_numpy(self.s.masks[idx].astype(np.int64))
        if not self.augment:
            if tuple(img.shape[-2:]) != self.size:
                img = F.interpolate(img, size=self.size, mode="bilinear", align_corners=False)
                msk = F.interpolate(msk[:, None].float(), size=self.size, mode="nearest")[:, 0].long()
            return img, msk
        n, _, h, w = img.shape
        out_i = torch.empty(n, 3, *self.size)
        out_m = torch.empty(n, *self.size, dtype=torch.long)
        for k in range(n):
            s = self.rng.uniform(*self.scale)
            ch, cw = max(8, int(round(h * np.sqrt(s)))), max(8, int(round(w * np.sqrt(s))))
            y0 = self.rng.integers(0, h - ch + 1)
            x0 = self.rng.integers(0, w - cw + 1)
            ci = img[k : k + 1, :, y0 : y0 + ch, x0 : x0 + cw]
            cm = msk[k : k + 1, None, y0 : y0 + ch, x0 : x0 + cw].float()
            ci = F.interpolate(ci, size=self.size, mode="bilinear", align_corners=False)
            cm = F.interpolate(cm, size=self.size, mode="nearest")
            if self.rng.random() < 0.5:
                ci = ci.flip(-1)
                cm = cm.flip(-1)
            if self.color > 0:
                # mild per-image gain/offset jitter in normalised space
                g = 1.0 + self.rng.uniform(-self.color, self.color)
                o = self.rng.uniform(-self.color, self.color)
                ci = ci * g + o
            if self.lighting > 0 and self.rng.random() < self.lighting:
                # the scene under another light (dimmer, harsher, tinted): an adapter that
                # meets its condition under dusk or night light in a composition has seen it
                px = (ci * self._std + self._mean).clamp(0, 1)
                gain = self.rng.uniform(0.45, 1.1)
                gamma = self.rng.uniform(0.8, 1.6)
                tint = torch.tensor(self.rng.uniform(0.85, 1.15, 3), dtype=torch.float32).view(1, 3, 1, 1)
                px = (gain * tint * px.pow(gamma)).clamp(0, 1)
                ci = (px - self._mean) / self._std
            out_i[k] = ci[0]
            out_m[k] = cm[0, 0].long()
        return out_i, out_m
