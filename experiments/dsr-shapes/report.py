#!/usr/bin/env python3
"""RESULTS.md tables and PNG plots from the experiment's results.json and the
runs' train.jsonl logs (run.py writes both).

    experiments/dsr-shapes/report.py [--out build/experiment] [--dest experiments/dsr-shapes] [--no-weights]

Plots (one line per run and seed): validation generation and understanding
scores, mean self-reward per direction, self-reward accuracy, and KL to the
start point, each against the training step.
"""
import argparse
import glob
import json
import os
import random
import shutil
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from run import KEYS, ORDER, aggregate, seeds_of  # noqa: E402
COLOURS = {"grpo_dual": "tab:blue", "simpo_dual": "tab:green", "grpo_gen_only": "tab:orange",
           "grpo_und_only": "tab:purple", "shuffled": "tab:gray", "grader_reward": "tab:red",
           "frozen_judge": "tab:brown"}


def read_log(path):
    steps, evals = [], []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "eval" in rec:
                evals.append(rec)
            elif "step" in rec and "loss" in rec:
                steps.append(rec)
    return steps, evals


def pct(x):
    return f"{100 * x:.1f}"


SMOOTH = 10  # steps in the trailing mean of the per-step panels
N_VAL = 64   # validation scenes per eval hook (run.py --n-val)


def runs_delta(a_items, b_items, n_boot=2000, seed=0):
    """Δ = run a − run b on the same test items ([[0/1 per item] per seed]
    each): mean and 95% bootstrap CI, resampling the shared items and each
    run's seeds independently (b = [base]: the paired Δ against base)."""
    rng = random.Random(seed)
    n = len(a_items[0])
    mean = sum(map(sum, a_items)) / (len(a_items) * n) - sum(map(sum, b_items)) / (len(b_items) * n)
    stats = []
    for _ in range(n_boot):
        idx = [rng.randrange(n) for _ in range(n)]
        sa = [a_items[rng.randrange(len(a_items))] for _ in a_items]
        # one seed (base): resampling it is the identity, so no draw
        sb = b_items if len(b_items) == 1 else [b_items[rng.randrange(len(b_items))] for _ in b_items]
        stats.append(sum(s[i] for s in sa for i in idx) / (len(sa) * n) - sum(s[i] for s in sb for i in idx) /
                     (len(sb) * n))
    stats.sort()
    return {"mean": mean, "ci_low": stats[int(0.025 * n_boot)], "ci_high": stats[int(0.975 * n_boot) - 1]}


# Run-against-run comparisons the studies name (both runs present): the
# self-rewards against their same-compute control; the frozen judge against
# the live one (fifth study's primary measure).
COMPARISONS = [("grpo_dual", "shuffled"), ("frozen_judge", "grpo_dual")]


def comparisons(results):
    """results['comparisons']['a − b'][direction]: runs_delta of each named pair."""
    out = {}
    for a, b in COMPARISONS:
        ka, kb = seeds_of(results, a), seeds_of(results, b)
        if ka and kb:
            out[f"{a} − {b}"] = {d: runs_delta([results["per_seed"][k][key]["items"] for k in ka],
                                               [results["per_seed"][k][key]["items"] for k in kb])
                                 for d, key in KEYS.items()}
    results["comparisons"] = out
    return ["| comparison | Δ generation [95% CI] | Δ understanding [95% CI] |", "|---|---|---|"] + [
        f"| {name} | " + " | ".join(f"{100 * v[d]['mean']:+.1f} [{100 * v[d]['ci_low']:+.1f}, "
                                   f"{100 * v[d]['ci_high']:+.1f}]" for d in ("generation", "understanding")) + " |"
        for name, v in out.items()]


def deltas(results):
    """Each run's scores (run.py's bootstrap, also for a run still in
    progress) and its paired Δ vs base, per direction, in results['runs']."""
    aggregate(results, ORDER)
    base = seeds_of(results, "base")
    if not base:
        return
    for name in ORDER[1:]:
        keys = seeds_of(results, name)
        if not keys or name not in results["runs"]:
            continue
        for d, key in KEYS.items():
            results["runs"][name][d]["delta_vs_base"] = runs_delta(
                [results["per_seed"][k][key]["items"] for k in keys], [results["per_seed"][base[0]][key]["items"]])


def table(results):
    lines = ["| run | seeds | generation (%) | Δ generation [95% CI] | understanding (%) | Δ understanding [95% CI] |",
             "|---|---|---|---|---|---|"]
    for name in ORDER:
        r = results["runs"].get(name)
        if not r:
            continue
        cells = []
        for d in ("generation", "understanding"):
            x = r[d]
            cells.append(f"{pct(x['mean'])} [{pct(x['ci_low'])}, {pct(x['ci_high'])}]")
            dl = x.get("delta_vs_base")
            cells.append(f"{100 * dl['mean']:+.1f} [{100 * dl['ci_low']:+.1f}, {100 * dl['ci_high']:+.1f}]" if dl else "")
        lines.append(f"| {name} | {r['generation']['seeds']} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    return "\n".join(lines)


def kinds_table(results):
    """Per kind (position, relation, counting): mean over seeds, both directions,
    and the self-reward accuracy at the end of training (test split)."""
    lines = ["| run | gen position | gen relation | gen counting | und position | und relation | und counting "
             "| self-reward acc. R_U | R_G |", "|---|---|---|---|---|---|---|---|---|"]
    for name in ORDER:
        keys = seeds_of(results, name)
        if not keys:
            continue
        ps = [results["per_seed"][k] for k in keys]
        avg = lambda f: sum(f(p) for p in ps) / len(ps)  # noqa: E731
        cells = [pct(avg(lambda p, d=d, kind=kind: p[KEYS[d]][kind]["score"]))
                 for d in ("generation", "understanding") for kind in ("position", "relation", "counting")]
        cells += [pct(avg(lambda p, r=r: p["self_reward_accuracy"][r]["overall"]["score"])) for r in ("r_u", "r_g")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(out, dest, checkpoint_scores=None, n_select=None):
    """training.png; checkpoint_scores ({step: {"generation", "understanding"}},
    longer.py's validation of each checkpoint on n_select scenes) fill the
    legend's panel."""
    panels = [("generation, greedy", lambda e: e["eval"]["generation_greedy"]["overall"]["score"], "eval"),
              ("understanding, greedy", lambda e: e["eval"]["understanding_greedy"]["overall"]["score"], "eval"),
              ("self-reward accuracy R_U", lambda e: e["eval"]["self_reward_accuracy"]["r_u"]["overall"]["score"], "eval"),
              ("self-reward accuracy R_G", lambda e: e["eval"]["self_reward_accuracy"]["r_g"]["overall"]["score"], "eval"),
              # the self-reward, also for the grader-rewarded run (logged beside its reward)
              ("mean self-reward R_U of rollouts", lambda s: s.get("und_self_reward_mean", s.get("und_reward_mean")), "step"),
              ("mean self-reward R_G of rollouts", lambda s: s.get("gen_self_reward_mean", s.get("gen_reward_mean")), "step"),
              ("KL to the start", lambda s: s.get("kl"), "step")]
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    for ax, (title, get, kind) in zip(axes.flat, panels):
        for path in sorted(glob.glob(os.path.join(out, "runs", "*", "train.jsonl"))):
            run = os.path.basename(os.path.dirname(path))
            name = run.rsplit("-seed", 1)[0]
            steps, evals = read_log(path)
            recs = evals if kind == "eval" else steps
            xs, ys = [], []
            for r in recs:
                try:
                    y = get(r)
                except (KeyError, TypeError):
                    y = None
                if y is not None:
                    xs.append(r["step"])
                    ys.append(y)
            if kind == "step" and len(ys) >= SMOOTH:  # one batch per step is noisy: a trailing mean
                ys = [sum(ys[max(0, i - SMOOTH + 1):i + 1]) / (i + 1 - max(0, i - SMOOTH + 1)) for i in range(len(ys))]
            if xs:
                ax.plot(xs, ys, color=COLOURS.get(name, "black"), alpha=0.8,
                        label=name if run.endswith("seed0") else None)
        ax.set_title(title + (f" (mean of {SMOOTH} steps)" if kind == "step" else f" (validation, {N_VAL} scenes)"))
        ax.set_xlabel("step")
    if checkpoint_scores:
        ax = axes.flat[-1]
        steps = sorted(checkpoint_scores, key=int)
        for d, style in (("generation", "o-"), ("understanding", "s--")):
            ax.plot([int(s) for s in steps], [checkpoint_scores[s][d] for s in steps], style, label=d)
        ax.set_title(f"checkpoints on validation ({n_select} scenes)")
        ax.set_xlabel("step")
        ax.legend()
    else:
        axes.flat[-1].axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        axes.flat[-1].legend(handles, labels, loc="center")
    fig.tight_layout()
    path = os.path.join(dest, "training.png")
    fig.savefig(path, dpi=80)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "experiment"))
    ap.add_argument("--dest", default=HERE)
    ap.add_argument("--no-weights", action="store_true",
                    help="do not copy the final GRPO-dual seed-0 weights (17 MB) into --dest")
    args = ap.parse_args()
    os.makedirs(args.dest, exist_ok=True)
    results = json.load(open(os.path.join(args.out, "results.json")))
    deltas(results)
    compare = "\n".join(comparisons(results))
    # the final GRPO-dual checkpoint of seed 0, weights as evaluated (float32), without optimizer state
    final = os.path.join(args.out, "runs", "grpo_dual-seed0", "checkpoints", "final")
    if os.path.isdir(final) and not args.no_weights:
        keep = os.path.join(args.dest, "grpo-dual-seed0")
        os.makedirs(keep, exist_ok=True)
        for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
                     "preprocessor_config.json"):
            shutil.copyfile(os.path.join(final, name), os.path.join(keep, name))
        results["dsr_checkpoint"] = os.path.relpath(keep, ROOT)
    picture = plot(args.out, args.dest)
    summary = {k: v for k, v in results.items() if k != "per_seed"}
    with open(os.path.join(args.dest, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(args.dest, "table.md"), "w") as f:
        f.write(table(results) + "\n\n" + kinds_table(results) + "\n\n" + compare + "\n")
    print(table(results))
    print()
    print(kinds_table(results))
    print()
    print(compare)
    print(f"plots: {picture}")


if __name__ == "__main__":
    main()
