#!/usr/bin/env python3
"""Fine-tunes the VQ-VAE decoder of a trained shapes checkpoint, nothing else.

The encoder, the codebook and therefore every code stay as they are, so the
language model trained on those codes stays valid: only how codes become
pixels changes -- the VQ round trip (render -> encode -> decode -> detector)
and the images decoded from generated codes.  The decoder was trained
jointly with the encoder for the recipe's 2,100 VQ steps; here it trains
alone on the training renders (seed 1) against their fixed codes, with
pixel MSE plus the recipe's palette loss, and every --eval-every steps the
round trip is measured on validation scenes (seed 2, `dsr world roundtrip`);
the best one is written to --out (a copy of --checkpoint with the new
decoder), with finetune.json holding the validation curve.  The test split
is never read.

    /usr/bin/python3 models/shapes/finetune_decoder.py --checkpoint models/shapes/dsr-shapes \\
        --work build/default-model --out build/decoder-ft

--work is a recipe work directory (train.rgb/.jsonl: the training renders);
codes come from the checkpoint's own encoder.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see recipe.py

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import janus_torch as jt  # noqa: E402
import recipe  # noqa: E402


def load_model(ckpt):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    model = jt.Janus(cfg)
    sd = {k: v.float() for k, v in jt.read_safetensors(os.path.join(ckpt, "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"finetune_decoder: {ckpt} does not match the shapes model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return model, cfg


def write_checkpoint(model, src, out, meta):
    """src's files with model.safetensors from model (BF16, as the recipe exports)."""
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # the source's measurements describe the source, not this model
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("eval.json", "cfg-sweep-val.json", "finetune.json"))
    jt.write_safetensors(os.path.join(tmp, "model.safetensors"), model.state_dict(), bf16=True,
                         metadata={"format": "pt", "name": meta.get("name", "dsr-shapes")})
    with open(os.path.join(tmp, "finetune.json"), "w") as f:
        json.dump(meta, f, indent=2)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


def roundtrip(ckpt, n):
    r = subprocess.run([recipe.dsr_cli(), "world", "roundtrip", "--model", ckpt, "--seed",
                        str(recipe.SPLIT_SEEDS["val"]), "-n", str(n), "--json"], check=True, capture_output=True,
                       text=True)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a trained shapes checkpoint (HF Janus layout)")
    ap.add_argument("--work", required=True, help="recipe work directory with train.rgb / train.jsonl")
    ap.add_argument("--out", required=True, help="where the best checkpoint goes")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--palette", type=float, default=1.0, help="palette loss weight")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--val-n", type=int, default=500, help="validation scenes per round-trip measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.checkpoint)
    vq = model.model.vqmodel
    data = recipe.Dataset(os.path.join(args.work, "train"))
    n = len(data.items)
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(vq.decoder.parameters()) + list(vq.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    scratch = args.out + ".eval"
    meta = {"source": os.path.abspath(args.checkpoint), "steps": args.steps, "lr": args.lr, "palette": args.palette,
            "batch": args.batch, "seed": args.seed, "val_seed": recipe.SPLIT_SEEDS["val"], "val_n": args.val_n,
            "curve": []}
    base = roundtrip(args.checkpoint, args.val_n)
    best = (base["agree"], 0)
    meta["curve"].append({"step": 0, "roundtrip": base})
    write_checkpoint(model, args.checkpoint, args.out, dict(meta, best_step=0))
    recipe.log(f"decoder: step 0 (as given): validation round trip {base['agree']:.4f}")
    opt = torch.optim.Adam(params, lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    prog = recipe.Progress("decoder", args.steps)
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        idx = torch.randint(0, n, (args.batch,), generator=gen).numpy()
        x = data.pixels(idx)
        with torch.no_grad():  # the checkpoint's own codes (a work dir's codes.pt may be another encoder's)
            c = vq.encode(x)
        y = vq.decode(c)
        rec = (y - x).pow(2).mean()
        loss = rec + args.palette * recipe.palette_loss(y, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            prog.step(step, f"rec {rec.item():.4f} loss {loss.item():.4f}")
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            write_checkpoint(model, args.checkpoint, scratch, meta)
            r = roundtrip(scratch, args.val_n)
            meta["curve"].append({"step": step + 1, "roundtrip": r})
            recipe.log(f"decoder: step {step + 1}: validation round trip {r['agree']:.4f} (best {best[0]:.4f} at "
                       f"step {best[1]})")
            if r["agree"] > best[0]:
                best = (r["agree"], step + 1)
                os.rename(os.path.join(scratch, "model.safetensors"), os.path.join(args.out, "model.safetensors"))
    shutil.rmtree(scratch, ignore_errors=True)
    meta.update(best_step=best[1], best_roundtrip=best[0], minutes=(time.time() - t0) / 60)
    with open(os.path.join(args.out, "finetune.json"), "w") as f:
        json.dump(meta, f, indent=2)
    recipe.log(f"decoder: best validation round trip {best[0]:.4f} at step {best[1]}; wrote {args.out}")


if __name__ == "__main__":
    main()
