#!/usr/bin/python3
"""Rebuild the streamseg model package from nothing, in one seeded command.

  /usr/bin/python3 training/build_package.py --preset full          # -> models/default
  /usr/bin/python3 training/build_package.py --preset tiny          # -> a temp dir (CI)

Steps: synth stills (clear + each source condition; compositions are never
rendered) -> train the base on clear -> train one LoRA adapter per source
condition with the base frozen -> export model.onnx -> fit + export the
retrieval embedder (condition head) -> adapter index (centroids) -> model.json manifest.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time

# Idle OpenMP threads sleep instead of spinning: on a shared, oversubscribed
# machine spinning made 2-thread training steps 5-20x slower (measured: 6-12
# s/step vs 0.4 s/step for the tiny preset's batch). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from streamseg_train import data as D  # noqa: E402
from streamseg_train.export import export_segnet, lora_input_names  # noqa: E402
from streamseg_train.retrieval_index import fit_retrieval  # noqa: E402
from streamseg_train.model import CLASS_NAMES, SegNet, load_base, param_count  # noqa: E402
from streamseg_train.safetensors_io import read_metadata, save_file  # noqa: E402
from streamseg_train.train import train_adapter, train_base  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

PRESETS = {
    # ~75 min on 2 CPU cores (see training/README.md for the measured run)
    "full": dict(sources=D.TRAIN_SOURCES, n_clear=1800, n_cond=360, base_steps=2600, base_batch=16, base_lr=3e-3,
                 ad_steps=300, ad_batch=12, ad_lr=3e-3, rank=8, alpha=16.0, emb_per_cond=300,
                 base_budget=3000.0, ad_budget=240.0, out=os.path.join(REPO, "models", "default")),
    # a few minutes, for CI: same pipeline and contract, tiny data and steps
    "tiny": dict(sources=D.TINY_SOURCES, n_clear=48, n_cond=24, base_steps=30, base_batch=8, base_lr=3e-3,
                 ad_steps=8, ad_batch=8, ad_lr=3e-3, rank=4, alpha=8.0, emb_per_cond=24,
                 base_budget=None, ad_budget=None, out=None),
}

# (height, width) of the example input the ONNX graphs are traced with (H and W stay dynamic):
# the 16:9 plan of D.MODEL_INPUT
EXPORT_SIZE = (128, 224)

DEFAULT_PALETTE = {
    "sky": [70, 130, 180], "road": [128, 64, 128], "sidewalk": [244, 35, 232], "building": [70, 70, 70],
    "vegetation": [107, 142, 35], "vehicle": [0, 0, 142], "person": [220, 20, 60], "pole": [153, 153, 153],
}


def read_palette(log) -> dict:
    """Class colours from the renderer (src/synth/classes.ts) when it is there."""
    p = os.path.join(REPO, "src", "synth", "classes.ts")
    pal = dict(DEFAULT_PALETTE)
    if not os.path.exists(p):
        log("[palette] src/synth/classes.ts not found; using the default palette")
        return pal
    src = open(p).read()
    found = 0
    for name in CLASS_NAMES:
        m = re.search(r"""['"]?%s['"]?[^\[\n]{0,80}?\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]""" % re.escape(name), src)
        if m:
            pal[name] = [int(m.group(1)), int(m.group(2)), int(m.group(3))]
            found += 1
    log(f"[palette] {found}/{len(CLASS_NAMES)} colours read from src/synth/classes.ts")
    return pal


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--out", help="package directory (default: models/default for full, a temp dir for tiny)")
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"), help="where rendered stills are cached")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-data", action="store_true", help="smoke test without the renderer (random stills)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-from", metavar="PKG", help="reuse the base weights of an existing package (skip base training)")
    ap.add_argument("--base-continue", metavar="PKG", help="start the base from an existing package's weights and train it further "
                    "(warm start: the preset's schedule at --base-lr, within --base-budget)")
    ap.add_argument("--base-budget", type=float, metavar="SECONDS", help="base training time budget (default: the preset's)")
    ap.add_argument("--base-lr", type=float, help="base peak learning rate (default: the preset's; a third of it with --base-continue)")
    ap.add_argument("--adapter-lighting", type=float, default=0.0, metavar="P",
                    help="probability that an adapter's training image is seen under another light (gain, gamma, tint); default 0")
    args = ap.parse_args(argv)

    cfg = dict(PRESETS[args.preset])
    if args.base_from and args.base_continue:
        ap.error("--base-from and --base-continue exclude each other")
    if args.base_budget is not None:
        cfg["base_budget"] = args.base_budget
    if args.base_lr is not None:
        cfg["base_lr"] = args.base_lr
    elif args.base_continue:
        cfg["base_lr"] = cfg["base_lr"] / 3
    final_out = os.path.abspath(args.out or cfg["out"] or tempfile.mkdtemp(prefix=f"streamseg_{args.preset}_"))
    # the finished package replaces --out; refuse to delete a directory that is
    # neither empty nor a package (e.g. a mistyped --out /tmp)
    if os.path.isdir(final_out) and os.listdir(final_out) and not os.path.exists(os.path.join(final_out, "model.json")):
        ap.error(f"--out {final_out} exists, is not empty and is not a model package; not replacing it")
    # build into a staging dir and swap it in at the end, so a failed run never
    # leaves a half-written package behind
    os.makedirs(os.path.join(HERE, "runs"), exist_ok=True)
    out = tempfile.mkdtemp(prefix=f"staging_{args.preset}_", dir=os.path.join(HERE, "runs"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    log(f"preset={args.preset} seed={args.seed} out={final_out} cfg={json.dumps({k: v for k, v in cfg.items() if k != 'out'})}")

    stage = {}
    t_stage = time.time()

    def end_stage(name):
        nonlocal t_stage
        now = time.time()
        stage[name] = now - t_stage
        t_stage = now

    # ---- 1. data ---------------------------------------------------------
    # stills[cond]: one Stills per source size (each bucket one model input size)
    if args.random_data:
        stills = {cond: [D.random_stills(count, 128, seed=args.seed * 7919 + D.TRAIN_CONDITIONS.index(cond) * 31 + si, condition=cond)
                         for si, (_, count) in enumerate(D.source_counts(cfg["n_clear"] if cond == "clear" else cfg["n_cond"], cfg["sources"]))]
                  for cond in D.TRAIN_CONDITIONS}
    else:
        stills = D.training_stills(args.data_dir, cfg["sources"], cfg["n_clear"], cfg["n_cond"], args.seed, log)
    end_stage("synth+load")

    # ---- 2. base on clear ------------------------------------------------
    # every base training run behind the weights, oldest first (base_model.safetensors metadata)
    base_history = []
    if args.base_from or args.base_continue:
        prior = read_metadata(os.path.join(args.base_from or args.base_continue, "base_model.safetensors"))
        base_history = json.loads(prior.get("base_history", "[]"))
    if args.base_from:
        net = load_base(os.path.join(args.base_from, "base_model.safetensors"))
        log(f"[base] loaded from {args.base_from} (params={param_count(net)})")
    else:
        if args.base_continue:
            net = load_base(os.path.join(args.base_continue, "base_model.safetensors"))
            log(f"[base] continuing from {args.base_continue} (params={param_count(net)}), peak lr {cfg['base_lr']:.2e}")
        else:
            net = SegNet(num_classes=len(CLASS_NAMES))
            log(f"[base] SegNet params={param_count(net)} lora targets={len(net.lora_targets())}")
        # a continued base draws other batches than the run it continues
        info = train_base(net, stills["clear"], cfg["base_steps"], cfg["base_batch"], cfg["base_lr"], MEAN, STD,
                          seed=args.seed + (1 if args.base_continue else 0), log=log, time_budget=cfg["base_budget"])
        log(f"[base] done: {info}")
        base_history.append({"steps": info["steps"], "seconds": round(info["seconds"]), "peak_lr": cfg["base_lr"],
                             "continued": bool(args.base_continue), "sources": [f"{w}x{h}" for (w, h), _ in cfg["sources"]]})
    end_stage("base")

    # ---- 3. adapters -----------------------------------------------------
    ad_root = os.path.join(out, "adapters")
    os.makedirs(ad_root)
    targets = net.lora_targets()
    adapters = {}
    for i, cond in enumerate(D.ADAPTER_CONDITIONS):
        ad, ainfo = train_adapter(net, stills[cond], cfg["ad_steps"], cfg["ad_batch"], cfg["ad_lr"], MEAN, STD,
                                  seed=args.seed * 100 + i + 1, r=cfg["rank"], alpha=cfg["alpha"],
                                  name=cond, log=log, time_budget=cfg["ad_budget"], lighting=args.adapter_lighting)
        log(f"[{cond}] done: {ainfo}")
        adapters[cond] = ad
        d = os.path.join(ad_root, cond)
        os.makedirs(d)
        tensors = {}
        for name, a, b in zip(ad.names, ad.A, ad.B):
            tensors[f"base_model.model.{name}.lora_A.weight"] = a.detach().numpy()
            tensors[f"base_model.model.{name}.lora_B.weight"] = b.detach().numpy()
        save_file(tensors, os.path.join(d, "adapter_model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump({
                "peft_type": "LORA",
                "task_type": None,
                "base_model_name_or_path": "streamseg/default",
                "r": cfg["rank"],
                "lora_alpha": cfg["alpha"],
                "lora_dropout": 0.0,
                "bias": "none",
                "fan_in_fan_out": False,
                "init_lora_weights": True,
                "inference_mode": True,
                "target_modules": [t[0] for t in targets],
                "condition": cond,
                "train_steps": ainfo["steps"],
            }, f, indent=2)

    end_stage(f"{len(adapters)} adapters")

    # ---- 4. export model.onnx ------------------------------------------
    export_segnet(net, os.path.join(out, "model.onnx"), size=EXPORT_SIZE)
    log("[export] model.onnx written")

    # ---- 5. embedder + index --------------------------------------------
    retrieval = fit_retrieval(net, stills, cfg["emb_per_cond"], args.seed, MEAN, STD, out, EXPORT_SIZE, log)

    # ---- 6. manifest -----------------------------------------------------
    pal = read_palette(log)
    ce = net.class_embeddings.detach().numpy()
    manifest = {
        "name": "default",
        "version": "1.0.0",
        "input": {"name": "image", "width": EXPORT_SIZE[1], "height": EXPORT_SIZE[0], "layout": "NCHW", "mean": MEAN, "std": STD,
                  "fit": {"pixels": D.FIT_PIXELS, "stride": D.FIT_STRIDE, "maxSide": D.FIT_MAX_SIDE,
                          "smallSourceScale": D.FIT_SMALL_SOURCE_SCALE}},
        "output": {"name": "logits"},
        "classes": [
            {"name": n, "color": pal[n], "embedding": [round(float(v), 7) for v in ce[i]]} for i, n in enumerate(CLASS_NAMES)
        ],
        "classEmbeddings": {"input": "class_embeddings", "dim": int(ce.shape[1])},
        "lora": {
            "targets": [
                {"module": n, "in": cin, "out": cout, "inputA": lora_input_names(n)[0], "inputB": lora_input_names(n)[1]}
                for n, cin, cout in targets
            ]
        },
        "embedder": retrieval["manifest"],
        "adapters": {"dir": "adapters", "index": "adapters/index.json"},
        "model": "model.onnx",
    }
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    # base weights for torch (parity tests, evaluation, training more adapters later)
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    sd.update(retrieval["constants"])
    save_file(sd, os.path.join(out, "base_model.safetensors"),
              metadata={"arch": "SegNet", "config": json.dumps(net.config), "preset": args.preset, "seed": str(args.seed),
                        "base_history": json.dumps(base_history)})
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    if os.path.isdir(final_out):
        shutil.rmtree(final_out)
    shutil.move(out, final_out)
    end_stage("export+embedder+index+manifest")
    log("[timing] " + " | ".join(f"{k} {v:.1f}s" for k, v in stage.items()))
    log(f"[package] {final_out}: {total / 1e6:.2f} MB; total wall {time.time() - t_start:.0f}s")
    print(final_out)
    return final_out


if __name__ == "__main__":
    main()
