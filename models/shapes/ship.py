#!/usr/bin/env python3
"""Ship a trained checkpoint as dsrd's embedded default model.

    make ship-default-model [CHECKPOINT=build/default-model/checkpoint]

1. chooses the served CFG scale on validation prompts (seed 2, never the
   test split): the scale with the best sampled generation score is written
   to the checkpoint's generation_config.json as guidance_scale (a sweep
   already in the checkpoint, cfg-sweep-val.json over the same prompts and
   scales, is reused);
2. chooses the served sampling temperature on validation when
   --temperature-sweep names more than one: experiments/dsr-shapes/headroom.py
   (groups of G images and captions at each candidate temperature) on
   --n-temp-val validation scenes; the best mean of the two one-sample pass
   rates wins, and a candidate within 0.5 points of the best loses to a higher
   temperature.  Written as generation_config.json's temperature (dsrd's
   default for requests without one), the sweep as temperature-sweep-val.json;
   --choose-only stops here;
3. copies the checkpoint into models/shapes/dsr-shapes/ (with the sweep, as
   cfg-sweep-val.json) and rebuilds dsrd, which embeds it;
4. measures the embedded default through the API on the 500 held-out test
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


def temperature_sweep(ck, temps, n, group):
    """Runs headroom.py at each temperature (reusing a finished one) -> the sweep dict."""
    sweep_path = os.path.join(ck, "temperature-sweep-val.json")
    done = json.load(open(sweep_path)) if os.path.exists(sweep_path) else {}
    if done.get("n") != n or done.get("group") != group:
        done = {}
    sweep = done.get("sweep", {})
    for t in temps:
        if str(t) in sweep:
            log(f"temperature {t}: reusing {sweep_path}")
            continue
        out = os.path.join(ROOT, "build", f"headroom-t{t}.json")
        cmd = [sys.executable, os.path.join(ROOT, "experiments", "dsr-shapes", "headroom.py"), "--model", ck,
               "-n", str(n), "-g", str(group), "--image-temperature", str(t), "--caption-temperature", str(t),
               "--out", out]
        log(" ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=ROOT)
        h = json.load(open(out))
        sweep[str(t)] = {d: {k: h[d]["overall"][k] for k in ("single", "best_by_reward", "pairwise_auc", "diversity")}
                         for d in ("generation", "understanding")}
        json.dump({"split": "val", "n": n, "group": group, "sweep": sweep}, open(sweep_path, "w"), indent=1)
    return sweep


def choose_temperature(sweep, temps):
    """The best mean one-sample pass rate; within 0.5 points of it, the highest temperature."""
    mean = {t: (sweep[str(t)]["generation"]["single"]["score"] + sweep[str(t)]["understanding"]["single"]["score"])
            / 2 for t in temps}
    best = max(mean.values())
    return max(t for t in temps if mean[t] >= best - 0.005), mean


def build():
    subprocess.run(["make", "-s", "-j2", "all"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "build", "default-model", "checkpoint"))
    ap.add_argument("--cfg-sweep", default="1,2,3,5", help="CFG scales tried on validation")
    ap.add_argument("--n-val", type=int, default=100, help="validation prompts for the CFG choice")
    ap.add_argument("--temperature-sweep", default="1",
                    help="sampling temperatures tried on validation (one value: written as is, no sweep)")
    ap.add_argument("--n-temp-val", type=int, default=500, help="validation scenes for the temperature choice")
    ap.add_argument("--group", type=int, default=8, help="samples per validation scene for the temperature choice")
    ap.add_argument("--choose-only", action="store_true",
                    help="write the choices into the checkpoint's generation_config.json, then stop")
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
    json.dump(gen, open(gen_path, "w"), indent=2)  # now: the temperature sweep samples at the served CFG
    log(f"served CFG scale {best} (best sampled generation score on validation)")
    temps = sorted({float(x) for x in args.temperature_sweep.split(",")}, reverse=True)
    if len(temps) == 1:
        temp = temps[0]
    else:
        temp, mean = choose_temperature(temperature_sweep(ck, temps, args.n_temp_val, args.group), temps)
        for t in temps:
            log(f"temperature {t}: mean one-sample pass rate {100 * mean[t]:.1f}% on validation")
    gen["temperature"] = temp
    json.dump(gen, open(gen_path, "w"), indent=2)
    log(f"served temperature {temp}")
    if args.choose_only:
        return
    os.makedirs(SHIPPED, exist_ok=True)
    same = os.path.realpath(ck) == os.path.realpath(SHIPPED)  # re-shipping the default with new choices
    for f in [] if same else FILES + ["cfg-sweep-val.json", "temperature-sweep-val.json"]:
        if os.path.exists(os.path.join(ck, f)):
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
