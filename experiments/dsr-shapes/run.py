#!/usr/bin/env python3
"""The DSR experiment on the shapes world: do dual self-rewards improve both
directions?  Every run goes through dsrd + dsr-train over HTTP, as a user's.

    make experiment             # the whole matrix (resumable; progress + ETA)
    make experiment-smoke       # a few steps of two runs, for CI
    experiments/dsr-shapes/run.py --runs grpo_dual --seeds 0 --steps 20

Runs (RUNS below): base (no RL); GRPO with dual self-rewards; SimPO with dual
self-rewards; GRPO generation only; GRPO understanding only; GRPO with the
self-rewards shuffled within each group (the control: same compute, no
signal); GRPO with the world's grader as the reward (the reference: what
external supervision gives); GRPO with the dual self-rewards of a frozen
copy of the start checkpoint (frozen_judge.py: a second dsrd that never
follows the learner).

Data (unpaired): RL images are renders of the stream with seed 4 (their
captions are never given to the trainer); RL prompts are captions of the
stream with seed 5 (no images).  Validation (seed 2) is where choices are
made and what the eval hook tracks along training; the test split (seed 3,
scenes identical to a training scene removed) is reported and never used for
a choice.  Confidence intervals: 95% bootstrap over items x seeds.

Writes --out/results.json, RESULTS.md's tables and PNG plots (matplotlib).
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "shapes"))
import evaluate as ev  # noqa: E402

RL_IMAGE_SEED, RL_PROMPT_SEED = 4, 5
RUNS = {
    # name: dsr-train arguments beyond the common ones
    "grpo_dual": ["--algorithm", "grpo", "--directions", "und,gen", "--reward", "self"],
    "simpo_dual": ["--algorithm", "simpo", "--directions", "und,gen", "--reward", "self"],
    "grpo_gen_only": ["--algorithm", "grpo", "--directions", "gen", "--reward", "self"],
    "grpo_und_only": ["--algorithm", "grpo", "--directions", "und", "--reward", "self"],
    "shuffled": ["--algorithm", "grpo", "--directions", "und,gen", "--reward", "shuffled"],
    "grader_reward": ["--algorithm", "grpo", "--directions", "und,gen", "--reward", "command"],
    "frozen_judge": ["--algorithm", "grpo", "--directions", "und,gen", "--reward", "command"],
}
SEEDS = {"grpo_dual": [0, 1, 2], "simpo_dual": [0, 1, 2], "shuffled": [0, 1, 2],
         "grpo_gen_only": [0], "grpo_und_only": [0], "grader_reward": [0], "frozen_judge": [0, 1, 2]}
ORDER = ["base", "grpo_dual", "simpo_dual", "grpo_gen_only", "grpo_und_only", "shuffled", "grader_reward",
         "frozen_judge"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A dsrd learner on the start checkpoint, with a checkpoint directory."""

    def __init__(self, model, workdir, threads):
        self.port = free_port()
        self.ckpt = os.path.join(workdir, "checkpoints")
        os.makedirs(self.ckpt, exist_ok=True)
        self.log = open(os.path.join(workdir, "dsrd.log"), "a")
        args = [os.path.join(ROOT, "build", "dsrd"), "--port", str(self.port), "--model", model,
                "--checkpoint-dir", self.ckpt, "--reference", "--threads", str(threads)]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, OMP_WAIT_POLICY="passive"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ev.Server(self.url)
        for _ in range(600):
            try:
                self.server.call("/health", timeout=2)
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dsrd exited; see {self.log.name}")
                time.sleep(0.2)
        raise RuntimeError("dsrd did not become ready")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        self.log.close()


def prepare_data(out):
    """RL images (no captions) and prompts (no images)."""
    images, prompts = os.path.join(out, "data", "images"), os.path.join(out, "data", "prompts.txt")
    if os.path.exists(prompts):
        return images, prompts
    tmp = os.path.join(out, "data", "render")
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    ev.dsr("world", "render", "--seed", str(RL_IMAGE_SEED), "-n", "2000", "--out", tmp)
    os.makedirs(images, exist_ok=True)
    for f in os.listdir(tmp):
        if f.endswith(".png"):
            os.rename(os.path.join(tmp, f), os.path.join(images, f))
    shutil.rmtree(tmp)  # the captions stay unseen: the data is unpaired
    lines = [json.loads(l)["caption"] for l in ev.dsr("world", "sample", "--seed", str(RL_PROMPT_SEED), "-n",
                                                       "2000").splitlines()]
    with open(prompts, "w") as f:
        f.write("\n".join(lines) + "\n")
    return images, prompts


def eval_cmd(n_val):
    """The dsr-train evaluation hook: validation scores and self-reward accuracy."""
    return (f"{sys.executable} {os.path.join(ROOT, 'models', 'shapes', 'evaluate.py')} --server \"$DSR_SERVER\" "
            f"--split val -n {n_val} --no-sampled --json-line --quiet")


def train(name, seed, args, base, data, out, threads, tag="", extra=()):
    """One RL run (extra: more dsr-train arguments); returns (run dir, the
    daemon still holding the trained weights)."""
    run_dir = os.path.join(out, "runs", f"{name}-seed{seed}" + (f"-{tag}" if tag else ""))
    os.makedirs(run_dir, exist_ok=True)
    d = Daemon(base, run_dir, threads)
    images, prompts = data
    cmd = [os.path.join(ROOT, "build", "dsr-train"), "--server", d.url, "--images", images, "--prompts", prompts,
           "--steps", str(args.steps), "--group-size", str(args.group_size), "--batch-images",
           str(args.batch), "--batch-prompts", str(args.batch), "--lr", str(args.lr), "--seed", str(seed),
           "--log", os.path.join(run_dir, "train.jsonl"), "--state", os.path.join(run_dir, "train.state"),
           "--eval-every", str(args.eval_every), "--eval-cmd", eval_cmd(args.n_val), "--max-tokens", "24",
           "--temperature", "1"] + RUNS[name] + list(extra)
    if args.rollout_cfg is not None:
        cmd += ["--cfg-scale", str(args.rollout_cfg)]
    judge = None
    if name == "grader_reward":
        cmd += ["--reward-cmd", f"{os.path.join(ROOT, 'build', 'dsr')} world grade --batch"]
    elif name == "frozen_judge":  # the start checkpoint in a dsrd of its own, never /reload-ed
        judge_dir = os.path.join(run_dir, "judge")
        os.makedirs(judge_dir, exist_ok=True)
        judge = Daemon(base, judge_dir, threads)
        cmd += ["--reward-cmd", f"{sys.executable} {os.path.join(HERE, 'frozen_judge.py')} --server {judge.url}"]
    try:
        with open(os.path.join(run_dir, "dsr-train.out"), "w") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    finally:
        if judge:
            judge.stop()
    if r.returncode != 0:
        d.stop()
        raise RuntimeError(f"{name} seed {seed}: dsr-train exited {r.returncode}; see {run_dir}/dsr-train.out")
    return run_dir, d


KEYS = {"generation": "generation_sampled", "understanding": "understanding_greedy"}  # what the table reads
REPORTED = set(KEYS.values())


def test_eval(server, scenes, workdir, args):
    """Test-split scores with per-item verdicts (for the bootstrap): the
    reported modes and the self-reward accuracy (the reward-hacking check)."""
    return ev.evaluate(server, scenes, workdir, args.workers, per_item=True, want=REPORTED)


def select_lr(args, data):
    """Choose the AdamW lr on the validation split: GRPO-dual, seed 0, for
    each candidate; the one with the best mean of the reported scores
    (understanding greedy, generation sampled) on --n-select validation
    scenes wins.  Resumable (out/lr-select.json); never reads the test split."""
    path = os.path.join(args.out, "lr-select.json")
    sel = json.load(open(path)) if os.path.exists(path) else {}
    cands = [float(x) for x in args.select_lr.split(",")]
    work = os.path.join(args.out, "val-scenes")
    os.makedirs(work, exist_ok=True)
    scenes, _ = ev.heldout_scenes(work, args.n_select, 60000, ev.VAL_SEED)
    sub = argparse.Namespace(**vars(args))
    sub.steps, sub.out = args.select_steps or args.steps, os.path.join(args.out, "lr-select")
    for lr in cands:
        if repr(lr) in sel:
            continue
        log(f"lr selection: grpo_dual seed 0, lr {lr:g}, {sub.steps} steps")
        sub.lr = lr
        run_dir, d = train("grpo_dual", 0, sub, args.base, data, sub.out, args.threads, tag=f"lr{lr:g}")
        try:
            res = ev.evaluate(d.server, scenes, os.path.join(run_dir, "val-eval"), args.workers, want=REPORTED)
        finally:
            d.stop()
        score = (res["understanding_greedy"]["overall"]["score"] + res["generation_sampled"]["overall"]["score"]) / 2
        sel[repr(lr)] = {"understanding": res["understanding_greedy"]["overall"], "generation":
                         res["generation_sampled"]["overall"], "mean": score, "steps": sub.steps, "n_val": len(scenes)}
        json.dump(sel, open(path, "w"), indent=1)
        log(f"lr {lr:g}: validation understanding {res['understanding_greedy']['overall']['score']:.3f}, "
            f"generation {res['generation_sampled']['overall']['score']:.3f}")
    best = max((float(k) for k in sel if float(k) in cands), key=lambda lr: sel[repr(lr)]["mean"])
    log(f"lr selection: {best:g} (best mean validation score of {', '.join(f'{c:g}' for c in cands)})")
    return best, sel


def bootstrap(per_seed, n_boot=2000, rng=None):
    """per_seed: [[0/1 per item] per seed] -> mean and 95% CI, resampling seeds
    and items (items share indices across seeds: the same test set)."""
    rng = rng or random.Random(0)
    seeds, n = len(per_seed), len(per_seed[0])
    mean = sum(map(sum, per_seed)) / (seeds * n)
    stats = []
    for _ in range(n_boot):
        ss = [per_seed[rng.randrange(seeds)] for _ in range(seeds)]
        idx = [rng.randrange(n) for _ in range(n)]
        stats.append(sum(s[i] for s in ss for i in idx) / (seeds * n))
    stats.sort()
    return {"mean": mean, "ci_low": stats[int(0.025 * n_boot)], "ci_high": stats[int(0.975 * n_boot) - 1],
            "n_items": n, "seeds": seeds}


def seeds_of(results, name):
    """The per_seed keys of run name ("grpo_dual-seed0", ...)."""
    return sorted(k for k in results["per_seed"] if k.rsplit("-seed", 1)[0] == name)


def aggregate(results, names):
    """results['runs'][name]: each direction's score, bootstrapped over items x seeds."""
    for name in names:
        keys = seeds_of(results, name)
        if keys:
            results["runs"][name] = {d: bootstrap([results["per_seed"][k][key]["items"] for k in keys])
                                     for d, key in KEYS.items()}


def rollout_cfg(value, base):
    """--rollout-cfg: None (dsr-train's default), a number, or 'served' (the scale dsrd serves the base at)."""
    if value is None:
        return None
    if value == "served":
        with open(os.path.join(base, "generation_config.json")) as f:
            return float(json.load(f)["guidance_scale"])
    return float(value)


def main():
    ap = argparse.ArgumentParser(description="The DSR experiment on the shapes world.")
    ap.add_argument("--base", default=os.path.join(ROOT, "experiments", "dsr-shapes", "base"),
                    help="start checkpoint (default: the committed base)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "experiment"))
    ap.add_argument("--runs", default=",".join(ORDER))
    ap.add_argument("--seeds", help="override every run's seeds, e.g. 0")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2, help="images and prompts per step")
    ap.add_argument("--lr", type=float, default=3e-5,
                    help="AdamW lr for every run (ignored with --select-lr, which chooses it on validation)")
    ap.add_argument("--select-lr", metavar="LIST",
                    help="comma-separated candidate lrs: GRPO-dual seed 0 for --select-steps each, the best mean "
                         "validation score wins and the matrix runs with it (make experiment: 1e-5,3e-5,1e-4)")
    ap.add_argument("--select-steps", type=int,
                    help="steps of each lr candidate (default --steps: a shorter run chose an lr that helped at step "
                         "30 and hurt by step 80)")
    ap.add_argument("--n-select", type=int, default=128, help="validation scenes for the lr choice")
    ap.add_argument("--rollout-cfg",
                    help="CFG scale of the training rollouts: a number, or 'served' for the base's own "
                         "(generation_config.json guidance_scale); default dsr-train's, 5")
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--n-val", type=int, default=64, help="validation scenes per eval hook")
    ap.add_argument("-n", type=int, default=500, help="test scenes and prompts")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="CI: every run kind, seed 0, 2 steps, tiny evaluations")
    args = ap.parse_args()
    if args.smoke:
        args.steps, args.eval_every, args.n_val, args.n, args.runs, args.seeds = 2, 1, 8, 12, ",".join(ORDER), "0"
        args.select_steps, args.n_select = 1, 8
        args.select_lr = "1e-5,1e-4"
        args.out = os.path.join(ROOT, "build", "experiment-smoke")
    args.rollout_cfg = rollout_cfg(args.rollout_cfg, args.base)
    os.makedirs(args.out, exist_ok=True)
    results_path = os.path.join(args.out, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {"runs": {}, "per_seed": {}}
    data = prepare_data(args.out)
    if args.select_lr:
        args.lr, results["lr_selection"] = select_lr(args, data)
        json.dump(results, open(results_path, "w"), indent=1)
    results.setdefault("settings", {}).update({"lr": args.lr, "steps": args.steps, "group_size": args.group_size,
                                               "batch": args.batch, "eval_every": args.eval_every,
                                               "n_val": args.n_val,
                                               "rollout_cfg": 5.0 if args.rollout_cfg is None else args.rollout_cfg})
    work = os.path.join(args.out, "test-scenes")
    os.makedirs(work, exist_ok=True)
    scenes, dropped = ev.heldout_scenes(work, args.n, 60000)
    runs = [r for r in args.runs.split(",") if r]
    seeds = {r: [0] if r == "base" else [int(x) for x in args.seeds.split(",")] if args.seeds else SEEDS[r]
             for r in runs}
    # Seed-major (every run's seed 0, then every run's seed 1, ...): a matrix
    # cut short by time still compares the runs on the same seeds.
    todo = sorted([(r, s) for r in runs for s in seeds[r]], key=lambda rs: (rs[1], runs.index(rs[0])))
    t0, done = time.time(), 0
    for name, seed in todo:
        key = f"{name}-seed{seed}"
        if key in results["per_seed"]:
            done += 1
            continue
        log(f"run {key} ({done + 1}/{len(todo)})")
        if name == "base":
            run_dir = os.path.join(args.out, "runs", key)
            os.makedirs(run_dir, exist_ok=True)
            d = Daemon(args.base, run_dir, args.threads)
        else:
            run_dir, d = train(name, seed, args, args.base, data, args.out, args.threads)
        try:
            res = test_eval(d.server, scenes, os.path.join(run_dir, "test-eval"), args)
            if name != "base":
                d.server.call("/checkpoint", {"name": "final"})
        finally:
            d.stop()
        results["per_seed"][key] = res
        json.dump(results, open(results_path, "w"), indent=1)
        done += 1
        rate = (time.time() - t0) / done
        log(f"{key}: understanding {res['understanding_greedy']['overall']['score']:.3f}, generation "
            f"{res['generation_sampled']['overall']['score']:.3f}; ETA {(len(todo) - done) * rate / 60:.0f} min")
    aggregate(results, runs)
    results["base_checkpoint"] = os.path.relpath(args.base, ROOT)
    json.dump(results, open(results_path, "w"), indent=1)
    log(f"wrote {results_path}")


if __name__ == "__main__":
    main()
