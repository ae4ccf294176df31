"""Training loops: base network (all weights) and LoRA adapters (base frozen)."""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from typing import List

from .data import BucketBatcher, Stills, to_tensor
from .model import LoraAdapter, SegNet

NUM_CLASSES = 8


IGNORE = 255  # letterbox padding in masks (fixed-size inputs); never scored


def seg_loss(logits: torch.Tensor, target: torch.Tensor, class_weight: Optional[torch.Tensor] = None, dice: float = 0.5):
    ce = F.cross_entropy(logits, target, weight=class_weight, ignore_index=IGNORE)
    if dice <= 0:
        return ce
    valid = (target != IGNORE).unsqueeze(1).float()
    p = logits.softmax(1) * valid
    oh = F.one_hot(target.clamp(max=logits.shape[1] - 1) * (target != IGNORE), logits.shape[1]).permute(0, 3, 1, 2).float() * valid
    inter = (p * oh).sum((0, 2, 3))
    den = p.sum((0, 2, 3)) + oh.sum((0, 2, 3))
    present = oh.sum((0, 2, 3)) > 0
    d = 1.0 - (2 * inter + 1.0) / (den + 1.0)
    return ce + dice * d[present].mean()


def class_weights(buckets: List[Stills], num_classes: int = NUM_CLASSES) -> torch.Tensor:
    counts = np.ones(num_classes, np.float64)
    for stills in buckets:
        counts += np.bincount(stills.masks[: min(len(stills), 200)].ravel(), minlength=256)[:num_classes]
    freq = counts / counts.sum()
    w = 1.0 / np.sqrt(freq)
    w = w / w.mean()
    return torch.tensor(np.clip(w, 0.2, 5.0), dtype=torch.float32)


def lr_at(step: int, total: int, peak: float, warmup: int, progress: Optional[float] = None) -> float:
    """Linear warmup then cosine to 2% of peak. ``progress`` (0..1) overrides
    step/total, so a time-budgeted run still anneals fully."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup) if progress is None else progress
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _progress(step: int, steps: int, t0: float, budget: Optional[float]) -> float:
    p = step / max(1, steps)
    if budget:
        p = max(p, (time.time() - t0) / budget)
    return min(1.0, p)


def train_base(net: SegNet, data: List[Stills], steps: int, batch: int, lr: float, mean, std, seed: int,
               log: Callable[[str], None] = print, log_every: int = 50, time_budget: Optional[float] = None) -> dict:
    name = "base"
    torch.manual_seed(seed)
    net.train()
    decay, no_decay = [], []
    for n, p in net.named_parameters():
        (no_decay if p.ndim <= 1 or n in ("pos", "class_embeddings", "logit_scale") else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    b = BucketBatcher(data, batch, mean, std, seed, augment=True, scale=(0.45, 1.0), color=0.1)
    cw = class_weights(data)
    t0 = time.time()
    tl = time.time()
    run_loss = None
    done = 0
    for step in range(steps):
        prog = _progress(step, steps, t0, time_budget)
        if prog >= 1.0:
            log(f"[{name}] time budget {time_budget or 0:.0f}s reached at step {done}")
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, max(1, steps // 20), prog)
        x, y = b.next()
        loss = seg_loss(net(x), y, cw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        done = step + 1
        run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
        if done % log_every == 0 or done == steps:
            now = time.time()
            log(f"[base] step {done}/{steps} loss {run_loss:.4f} lr {opt.param_groups[0]['lr']:.2e} {(now - tl) / log_every:.3f} s/step")
            tl = now
    net.eval()
    return {"steps": done, "seconds": time.time() - t0, "loss": run_loss}


def freeze(net: SegNet) -> None:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)


def train_adapter(net: SegNet, data: List[Stills], steps: int, batch: int, lr: float, mean, std, seed: int,
                  r: int = 8, alpha: float = 16.0, name: str = "adapter", log: Callable[[str], None] = print,
                  log_every: int = 50, time_budget: Optional[float] = None, lighting: float = 0.0):
    """Train one LoRA adapter with the base frozen (BatchNorm in eval mode)."""
    torch.manual_seed(seed)
    freeze(net)
    ad = LoraAdapter(net.lora_targets(), r=r, alpha=alpha)
    opt = torch.optim.AdamW(ad.parameters(), lr=lr, weight_decay=0.0)
    b = BucketBatcher(data, batch, mean, std, seed, augment=True, scale=(0.45, 1.0), color=0.0, lighting=lighting)
    cw = class_weights(data)
    t0 = time.time()
    tl = time.time()
    run_loss = None
    done = 0
    for step in range(steps):
        prog = _progress(step, steps, t0, time_budget)
        if prog >= 1.0:
            log(f"[{name}] time budget {time_budget or 0:.0f}s reached at step {done}")
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, max(1, steps // 20), prog)
        x, y = b.next()
        loss = seg_loss(net(x, lora=ad.as_dict()), y, cw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ad.parameters(), 5.0)
        opt.step()
        done = step + 1
        run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
        if done % log_every == 0 or done == steps:
            now = time.time()
            log(f"[{name}] step {done}/{steps} loss {run_loss:.4f} {(now - tl) / log_every:.3f} s/step")
            tl = now
    return ad, {"steps": done, "seconds": time.time() - t0, "loss": run_loss}


@torch.no_grad()
def predict(net: SegNet, images: np.ndarray, mean, std, lora=None, batch: int = 32) -> np.ndarray:
    net.eval()
    out = []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i : i + batch], mean, std)
        out.append(net(x, lora=lora).argmax(1).numpy().astype(np.uint8))
    return np.concatenate(out)


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    k = gt.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(k, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou(conf: np.ndarray):
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - np.diag(conf)
    present = conf.sum(1) > 0
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return float(np.nanmean(iou[present])), iou
