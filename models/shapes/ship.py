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
   then, likewise, the nucleus top_p at that temperature when --top-p-sweep
   names more than one, among candidates whose images stay a group of
   different pictures (--min-hamming), as top_p and top-p-sweep-val.json;
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


def sampling_sweep(ck, key, values, n, group, temperature=None):
    """Runs headroom.py at each candidate value of key ("temperature" or "top_p"; top_p at the given
    temperature), reusing a finished one in CK/<key>-sweep-val.json -> the sweep dict."""
    sweep_path = os.path.join(ck, f"{key.replace('_', '-')}-sweep-val.json")
    done = json.load(open(sweep_path)) if os.path.exists(sweep_path) else {}
    if done.get("n") != n or done.get("group") != group or done.get("temperature") != temperature:
        done = {}
    sweep = done.get("sweep", {})
    for v in values:
        if str(v) in sweep:
            log(f"{key} {v}: reusing {sweep_path}")
            continue
        out = os.path.join(ROOT, "build", f"headroom-{key}{v}.json")
        t = v if key == "temperature" else temperature
        cmd = [sys.executable, os.path.join(ROOT, "experiments", "dsr-shapes", "headroom.py"), "--model", ck,
               "-n", str(n), "-g", str(group), "--image-temperature", str(t), "--caption-temperature", str(t),
               "--out", out] + (["--top-p", str(v)] if key == "top_p" else [])
        log(" ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=ROOT)
        h = json.load(open(out))
        sweep[str(v)] = {d: {k: h[d]["overall"][k] for k in ("single", "best_by_reward", "pairwise_auc", "diversity")}
                         for d in ("generation", "understanding")}
        json.dump({"split": "val", "n": n, "group": group, "temperature": temperature, "sweep": sweep},
                  open(sweep_path, "w"), indent=1)
    return sweep


def choose(sweep, values, min_hamming=0.0):
    """The best mean one-sample pass rate among candidates whose images stay a group of different
    pictures (two of a group differ in at least min_hamming of their code positions); within 0.5
    points of the best, the highest value (the one nearest the policy's own distribution)."""
    mean = {v: (sweep[str(v)]["generation"]["single"]["score"] + sweep[str(v)]["understanding"]["single"]["score"])
            / 2 for v in values}
    ok = [v for v in values if sweep[str(v)]["generation"].get("diversity", {}).get("hamming", 1.0) >= min_hamming]
    if not ok:
        sys.exit(f"ship: no candidate keeps images at least {min_hamming} apart")
    best = max(mean[v] for v in ok)
    return max(v for v in ok if mean[v] >= best - 0.005), mean


def build():
    subprocess.run(["make", "-s", "-j2", "all"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "build", "default-model", "checkpoint"))
    ap.add_argument("--cfg-sweep", default="1,2,3,5", help="CFG scales tried on validation")
    ap.add_argument("--n-val", type=int, default=100, help="validation prompts for the CFG choice")
    ap.add_argument("--temperature-sweep", default="1",
                    help="sampling temperatures tried on validation (one value: written as is, no sweep)")
    ap.add_argument("--top-p-sweep", default="1",
                    help="nucleus top_p values tried on validation at the chosen temperature (one value: written "
                         "as is, no sweep)")
    ap.add_argument("--min-hamming", type=float, default=0.5,
                    help="top_p candidates must keep two images of a group this far apart (share of code positions)")
    ap.add_argument("--n-temp-val", type=int, default=500, help="validation scenes for the sampling choices")
    ap.add_argument("--group", type=int, default=8, help="samples per validation scene for the sampling choices")
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
        temp, mean = choose(sampling_sweep(ck, "temperature", temps, args.n_temp_val, args.group), temps)
        for t in temps:
            log(f"temperature {t}: mean one-sample pass rate {100 * mean[t]:.1f}% on validation")
    gen["temperature"] = temp  # written with top_p below (the top_p sweep passes it explicitly)
    log(f"served temperature {temp}")
    top_ps = sorted({float(x) for x in args.top_p_sweep.split(",")}, reverse=True)
    if len(top_ps) == 1:
        top_p = top_ps[0]
    else:
        top_p, mean = choose(sampling_sweep(ck, "top_p", top_ps, args.n_temp_val, args.group, temp), top_ps,
                             args.min_hamming)
        for p in top_ps:
            log(f"top_p {p}: mean one-sample pass rate {100 * mean[p]:.1f}% on validation")
    if top_p < 1:  # HF's key; dsrd serves it as the default of requests without one
        gen["top_p"] = top_p
    else:
        gen.pop("top_p", None)
    json.dump(gen, open(gen_path, "w"), indent=2)
    log(f"served top_p {top_p}")
    if args.choose_only:
        return
    os.makedirs(SHIPPED, exist_ok=True)
    same = os.path.realpath(ck) == os.path.realpath(SHIPPED)  # re-shipping the default with new choices
    for f in [] if same else FILES + ["cfg-sweep-val.json", "temperature-sweep-val.json",
                                           "top-p-sweep-val.json"]:
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
