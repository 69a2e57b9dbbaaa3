#!/usr/bin/env python3
"""Ship a trained checkpoint as dsrd's embedded default model.

    make ship-default-model [CHECKPOINT=build/default-model/checkpoint]

1. chooses the served CFG scale on validation prompts (seed 2, never the
   test split): the scale with the best sampled generation score is written
   to the checkpoint's generation_config.json as guidance_scale (a sweep
   already in the checkpoint, cfg-sweep-val.json over the same prompts and
   scales, is reused);
2. copies the checkpoint into models/shapes/dsr-shapes/ (with the sweep, as
   cfg-sweep-val.json) and rebuilds dsrd, which embeds it;
3. measures the embedded default through the API on the 500 held-out test
   scenes and prompts and stores the result as dsr-shapes/eval.json (what
   GET /model reports under "measured"), then rebuilds once more so the
   binary carries it.

Progress goes to stderr; the test table is printed at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHIPPED = os.path.join(HERE, "dsr-shapes")
FILES = ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "preprocessor_config.json",
         "recipe.json"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] ship: {msg}", file=sys.stderr, flush=True)


def evaluate(*args):
    cmd = [sys.executable, os.path.join(HERE, "evaluate.py"), *args]
    log(" ".join(cmd[1:]))
    subprocess.run(cmd, check=True, cwd=ROOT)


def build():
    subprocess.run(["make", "-s", "-j2", "all"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "build", "default-model", "checkpoint"))
    ap.add_argument("--cfg-sweep", default="1,2,3,5", help="CFG scales tried on validation")
    ap.add_argument("--n-val", type=int, default=100, help="validation prompts for the CFG choice")
    ap.add_argument("-n", type=int, default=500, help="held-out test scenes and prompts")
    args = ap.parse_args()
    ck = args.checkpoint
    missing = [f for f in FILES if not os.path.exists(os.path.join(ck, f))]
    if missing:
        sys.exit(f"ship: {ck} lacks {', '.join(missing)} (run make default-model first)")
    build()
    sweep_path = os.path.join(ck, "cfg-sweep-val.json")
    scales = sorted(float(x) for x in args.cfg_sweep.split(","))
    done = json.load(open(sweep_path)) if os.path.exists(sweep_path) else {}
    if done.get("split") == "val" and done.get("n") == args.n_val and \
            sorted(float(x) for x in done.get("sweep", {})) == scales:
        log(f"reusing {sweep_path} (the same {args.n_val} validation prompts and scales)")
    else:
        evaluate("--model", ck, "--split", "val", "-n", str(args.n_val), "--cfg-sweep", args.cfg_sweep, "--out",
                 sweep_path, "--quiet")
    best = json.load(open(sweep_path))["best"]
    gen_path = os.path.join(ck, "generation_config.json")
    gen = json.load(open(gen_path))
    gen["guidance_scale"] = best
    json.dump(gen, open(gen_path, "w"), indent=2)
    log(f"served CFG scale {best} (best sampled generation score on validation)")
    os.makedirs(SHIPPED, exist_ok=True)
    for f in FILES + ["cfg-sweep-val.json"]:
        shutil.copy(os.path.join(ck, f), os.path.join(SHIPPED, f))
    name = json.load(open(os.path.join(ck, "recipe.json")))["name"]
    # eval.json names the model until it holds the measured scores
    json.dump({"model": name, "summary": {}}, open(os.path.join(SHIPPED, "eval.json"), "w"))
    build()
    out = os.path.join(ROOT, "build", "eval-default.json")
    evaluate("-n", str(args.n), "--out", out)
    shutil.copy(out, os.path.join(SHIPPED, "eval.json"))
    build()
    log(f"shipped {name}: {json.load(open(out))['summary']}")


if __name__ == "__main__":
    main()
