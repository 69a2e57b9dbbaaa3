#!/usr/bin/env python3
"""How far does GRPO with dual self-rewards go with more steps?  One longer
GRPO-dual run from the same start point, the step count chosen on
validation, the chosen checkpoint measured once on test.

    /usr/bin/python3 experiments/dsr-shapes/longer.py --base models/shapes/dsr-shapes \\
        --matrix build/experiment-default --steps 400 --every 40

* Same settings as run.py's matrix (data, group size, batch, sampling, lr:
  --lr, default the matrix's lr choice read from --matrix/results.json).
* The learner writes a checkpoint every --every steps; each is scored on
  --n-select validation scenes (seed 2) with the reported modes
  (understanding greedy, generation sampled at the served defaults); the one
  with the best mean of the two wins (ties: the earlier step); the start
  point itself is candidate step 0.
* Only the winner is measured on the test split (the matrix's 500 scenes),
  with the paired difference from the matrix's base on the same items
  (95% bootstrap CI over items; one seed).

Resumable: finished validation scores are kept in --out/steps.json.
Writes --out/results.json.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402
from run import ev, log  # noqa: E402
from report import runs_delta  # noqa: E402


def checkpoints(run_dir):
    """{step: directory} of the learner's step checkpoints (dsr-train names
    them step-NNNNNN-KEY)."""
    root = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(root):
        return {}
    return {int(d.split("-")[1]): os.path.join(root, d) for d in os.listdir(root) if d.startswith("step-")}


def validation_scores(args, run_dir, val_scenes):
    """Every checkpoint's validation scores, steps.json (resumable)."""
    path = os.path.join(args.out, "steps.json")
    scores = json.load(open(path)) if os.path.exists(path) else {}
    candidates = {0: args.base, **checkpoints(run_dir)}  # step 0: the start point, no RL
    for step, ckpt in sorted(candidates.items()):
        name = f"step-{step:06d}"
        if str(step) in scores:
            continue
        d = run.Daemon(ckpt, os.path.join(args.out, "val", name), args.threads)
        try:
            res = ev.evaluate(d.server, val_scenes, os.path.join(args.out, "val", name), args.workers,
                              want=run.REPORTED)
        finally:
            d.stop()
        u, g = res["understanding_greedy"]["overall"]["score"], res["generation_sampled"]["overall"]["score"]
        scores[str(step)] = {"understanding": u, "generation": g, "mean": (u + g) / 2}
        json.dump(scores, open(path, "w"), indent=1)
        log(f"step {step}: validation understanding {u:.3f}, generation {g:.3f}")
    return scores


def main():
    ap = argparse.ArgumentParser(description="A longer GRPO-dual run, the step chosen on validation.")
    ap.add_argument("--base", required=True, help="start checkpoint (the matrix's --base)")
    ap.add_argument("--matrix", required=True, help="the matrix's --out (its lr choice, base test verdicts)")
    ap.add_argument("--out", default=os.path.join(run.ROOT, "build", "experiment-longer"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=40, help="checkpoint and validation interval (steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, help="default: the matrix's lr")
    ap.add_argument("--n-select", type=int, default=128, help="validation scenes per checkpoint")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dest", help="also write DEST/longer.json (no per-item lists) and DEST/training.png")
    args = ap.parse_args()
    matrix = json.load(open(os.path.join(args.matrix, "results.json")))
    settings = dict(matrix["settings"])
    if args.lr is not None:
        settings["lr"] = args.lr
    targs = argparse.Namespace(steps=args.steps, group_size=settings["group_size"], batch=settings["batch"],
                               lr=settings["lr"], eval_every=args.every, n_val=64,
                               rollout_cfg=settings.get("rollout_cfg"))
    os.makedirs(args.out, exist_ok=True)
    data = run.prepare_data(args.matrix)

    run_dir = os.path.join(args.out, "runs", f"grpo_dual-seed{args.seed}")
    if args.steps not in checkpoints(run_dir):
        log(f"grpo_dual seed {args.seed}: {args.steps} steps at lr {targs.lr:g}, a checkpoint every {args.every}")
        _, d = run.train("grpo_dual", args.seed, targs, args.base, data, args.out, args.threads,
                         extra=["--checkpoint-every", str(args.every)])
        d.stop()

    work = os.path.join(args.out, "val-scenes")
    os.makedirs(work, exist_ok=True)
    val_scenes, _ = ev.heldout_scenes(work, args.n_select, 60000, ev.VAL_SEED)
    scores = validation_scores(args, run_dir, val_scenes)
    best = max(sorted(scores, key=int), key=lambda s: scores[s]["mean"])
    log(f"chosen on validation: step {best} (mean {scores[best]['mean']:.3f})")

    res_path = os.path.join(args.out, "results.json")
    results = json.load(open(res_path)) if os.path.exists(res_path) else {}
    if int(best) == 0:
        results = {"chosen_step": 0, "checkpoint": os.path.relpath(args.base, run.ROOT), "validation": scores,
                   "test": matrix["per_seed"]["base-seed0"]}
    elif results.get("chosen_step") != int(best):
        work = os.path.join(args.out, "test-scenes")
        os.makedirs(work, exist_ok=True)
        n = len(matrix["per_seed"]["base-seed0"]["generation_sampled"]["items"])
        scenes, _ = ev.heldout_scenes(work, n, 60000)
        ckpt = checkpoints(run_dir)[int(best)]
        name = os.path.basename(ckpt)
        d = run.Daemon(ckpt, os.path.join(args.out, "test", name), args.threads)
        try:
            res = run.test_eval(d.server, scenes, os.path.join(args.out, "test", name), args)
        finally:
            d.stop()
        results = {"chosen_step": int(best), "checkpoint": os.path.relpath(ckpt, run.ROOT),
                   "settings": dict(settings, steps=args.steps, every=args.every, seed=args.seed,
                                    n_select=args.n_select),
                   "validation": scores, "test": res}
    base = matrix["per_seed"]["base-seed0"]
    for d, key in run.KEYS.items():
        results.setdefault("delta_vs_base", {})[d] = runs_delta([results["test"][key]["items"]], [base[key]["items"]])
    json.dump(results, open(res_path, "w"), indent=1)
    for d, key in run.KEYS.items():
        dl = results["delta_vs_base"][d]
        log(f"test {d}: {results['test'][key]['overall']['score']:.3f}  Δ vs base {100 * dl['mean']:+.1f} "
            f"[{100 * dl['ci_low']:+.1f}, {100 * dl['ci_high']:+.1f}]")
    log(f"wrote {res_path}")
    if args.dest:
        publish(args, results)


def publish(args, results):
    """The committed summary: results without the per-item verdicts, and the
    training plot with each checkpoint's validation scores."""
    from report import plot  # matplotlib only here
    os.makedirs(args.dest, exist_ok=True)
    test = {k: {kk: v for kk, v in res.items() if kk != "items"} for k, res in results["test"].items()}
    with open(os.path.join(args.dest, "longer.json"), "w") as f:
        json.dump(dict(results, test=test), f, indent=1)
    picture = plot(args.out, args.dest, results["validation"], args.n_select)
    log(f"wrote {os.path.join(args.dest, 'longer.json')} and {picture}")

if __name__ == "__main__":
    main()
