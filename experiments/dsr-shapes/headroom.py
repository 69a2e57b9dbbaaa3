#!/usr/bin/env python3
"""How much could the dual self-rewards select?  A diagnostic of the reward
GRPO sees, not of training: for each validation prompt (scene) it draws a
group of G samples as the RL rollouts are drawn (images at the served CFG and
temperature, captions at temperature 1; --image-temperature,
--caption-temperature and --top-p change that), scores each with its self-reward
(R_G for images, R_U for captions, from /rollout's `score`) and grades each
with the world's grader.

    experiments/dsr-shapes/headroom.py --model models/shapes/dsr-shapes -n 200 -g 8 \\
        --out experiments/dsr-shapes/from-default/headroom.json

Reported per direction (95% bootstrap CIs over prompts):
  * single: the mean pass rate of one sample (what the served model scores);
  * best_by_reward / worst_by_reward: the pass rate of the group's highest /
    lowest-reward sample (best-of-G reranking by the self-reward);
  * oracle: a group has at least one passing sample (best-of-G with the grader);
  * mixed_groups: groups with both passing and failing samples, the only
    ones in which even a perfect reward gives GRPO a signal about the grader;
  * pairwise_auc: within mixed groups, P(reward of a passing sample > reward
    of a failing one), ties 1/2 (0.5 = the reward carries no grader signal);
  * diversity (overall only): the mean share of distinct samples in a group
    and of code / token positions at which two of its samples differ.

--judge DIR takes the rewards from another checkpoint's /score (R_G of each
image's PNG, R_U of each caption) instead of the sampling model's own: how
well, say, the supervised model ranks a trained policy's samples.

Validation split only (stream seed 2): a diagnostic, never a choice made on test.
"""
import argparse
import base64
import json
import os
import random
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "shapes"))
import evaluate as ev  # noqa: E402


def group_stats(groups):
    """groups: [[(reward, pass)]] -> per-prompt values of each measure."""
    per = {"single": [], "best_by_reward": [], "worst_by_reward": [], "oracle": []}
    mixed, auc_num, auc_den = [], 0.0, 0
    for g in groups:
        passes = [p for _, p in g]
        per["single"].append(sum(passes) / len(g))
        per["best_by_reward"].append(float(max(g, key=lambda x: x[0])[1]))
        per["worst_by_reward"].append(float(min(g, key=lambda x: x[0])[1]))
        per["oracle"].append(float(any(passes)))
        is_mixed = 0 < sum(passes) < len(g)
        mixed.append(float(is_mixed))
        if is_mixed:
            for rp, pp in g:
                for rf, pf in g:
                    if pp and not pf:
                        auc_num += 1.0 if rp > rf else 0.5 if rp == rf else 0.0
                        auc_den += 1
    per["mixed_groups"] = mixed
    return per, (auc_num / auc_den if auc_den else float("nan")), auc_den


def bootstrap_ci(values, n_boot=2000, seed=0):
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    return [means[int(0.025 * n_boot)], means[int(0.975 * n_boot) - 1]]


def diversity(groups):
    """groups: [[token or code sequence]] -> how different a group's samples are:
    distinct (the mean share of distinct sequences in a group) and hamming (the
    mean share of positions at which two samples of a group differ, over all
    pairs; a shorter sequence is padded, so a length difference counts)."""
    distinct, hamming = [], []
    for g in groups:
        distinct.append(len({tuple(x) for x in g}) / len(g))
        pairs = [(a, b) for i, a in enumerate(g) for b in g[i + 1:]]
        for a, b in pairs:
            n = max(len(a), len(b))
            hamming.append(sum(1 for k in range(n) if k >= len(a) or k >= len(b) or a[k] != b[k]) / n)
    return {"distinct": sum(distinct) / len(distinct), "hamming": sum(hamming) / len(hamming) if hamming else 0.0}


def summarise(groups, kinds):
    out = {}
    for k in ev.KINDS + ["overall"]:
        per, auc, pairs = group_stats([g for g, kk in zip(groups, kinds) if k == "overall" or kk == k])
        out[k] = {m: {"score": sum(v) / len(v), "ci95": bootstrap_ci(v)} for m, v in per.items()}
        out[k]["pairwise_auc"], out[k]["auc_pairs"] = auc, pairs
        if k == "overall":
            gain = [b - s for b, s in zip(per["best_by_reward"], per["single"])]
            out[k]["best_minus_single"] = {"score": sum(gain) / len(gain), "ci95": bootstrap_ci(gain)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint directory (default: the embedded default)")
    ap.add_argument("--server", help="a running dsrd instead of starting one")
    ap.add_argument("-n", type=int, default=200, help="validation prompts (scenes)")
    ap.add_argument("-g", "--group", type=int, default=8, help="samples per prompt (the RL group size)")
    ap.add_argument("--caption-temperature", type=float, default=1.0)
    ap.add_argument("--image-temperature", type=float,
                    help="image sampling temperature (default: the served default, as the rollouts)")
    ap.add_argument("--top-p", type=float,
                    help="nucleus sampling for images and captions (default: the served default)")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--judge", help="another checkpoint whose self-rewards rank the samples (/score) instead of "
                                    "the sampling model's own")
    ap.add_argument("--out", required=True, help="JSON to write")
    args = ap.parse_args()

    proc = judge_proc = None
    if args.server:
        srv = ev.Server(args.server)
    else:
        proc, srv = ev.start_dsrd(args.model, args.threads)
    if args.judge:
        judge_proc, judge = ev.start_dsrd(args.judge, args.threads)
    try:
        work = tempfile.mkdtemp(prefix="dsr-headroom-")
        scenes, _ = ev.heldout_scenes(work, args.n, 60000, seed=ev.VAL_SEED)
        kinds = [s["kind"] for s in scenes]

        def judged(out, items):
            """out with each sample's reward replaced by the judge's /score of items (one per sample)."""
            rewards = [it["reward"] for it in judge.call("/score", {"items": items})["items"]]
            return [(rw, *rest) for rw, (_, *rest) in zip(rewards, out)]

        def images(i, s):
            body = {"task": "generation", "prompt": {"text": s["caption"]}, "n": args.group, "seed": i,
                    "score": True, "return_png": True}
            if args.image_temperature is not None:
                body["temperature"] = args.image_temperature
            if args.top_p is not None:
                body["top_p"] = args.top_p
            out = []
            for j, r in enumerate(srv.call("/rollout", body)["rollouts"]):
                path = os.path.join(work, f"gen-{i:05d}-{j:02d}.png")
                with open(path, "wb") as f:
                    f.write(base64.b64decode(r["png"]))
                out.append((r["reward"], path, r["codes"]))
            if args.judge:  # the judge's R_G of each image, from its PNG
                out = judged(out, [{"task": "generation", "prompt": {"text": s["caption"]},
                                    "image": {"png": ev.png_b64(p)}} for _, p, _ in out])
            return out

        def captions(i, s):
            body = {"task": "understanding", "image": {"png": ev.png_b64(s["path"])}, "n": args.group,
                    "max_tokens": args.max_tokens, "temperature": args.caption_temperature, "seed": i,
                    "score": True}
            if args.top_p is not None:
                body["top_p"] = args.top_p
            out = [(r["reward"], r["text"], r["tokens"]) for r in srv.call("/rollout", body)["rollouts"]]
            if args.judge:  # the judge's R_U of each caption
                png = ev.png_b64(s["path"])
                out = judged(out, [{"task": "understanding", "image": {"png": png}, "response": {"text": t}}
                                   for _, t, _ in out])
            return out

        model = srv.call("/model").get("name")
        res = {"model": model, "n": args.n, "group": args.group,
               "caption_temperature": args.caption_temperature, "image_temperature": args.image_temperature,
               "top_p": args.top_p,
               "judge": judge.call("/model").get("name") if args.judge else model,
               "split": "validation (stream seed 2)"}
        gen = ev.run_parallel(images, scenes, args.workers, "image groups")
        verdicts = iter(ev.grade([(p, s["caption"]) for s, g in zip(scenes, gen) for _, p, _ in g]))
        res["generation"] = summarise([[(r, next(verdicts)) for r, _, _ in g] for g in gen], kinds)
        res["generation"]["overall"]["diversity"] = diversity([[c for _, _, c in g] for g in gen])
        und = ev.run_parallel(captions, scenes, args.workers, "caption groups")
        verdicts = iter(ev.grade([(s["path"], c) for s, g in zip(scenes, und) for _, c, _ in g]))
        res["understanding"] = summarise([[(r, next(verdicts)) for r, _, _ in g] for g in und], kinds)
        res["understanding"]["overall"]["diversity"] = diversity([[t for _, _, t in g] for g in und])
    finally:
        for p in (proc, judge_proc):
            if p:
                p.terminate()
                p.wait()

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    for d in ("generation", "understanding"):
        o = res[d]["overall"]
        print(f"{d:13s} single {o['single']['score']:.3f}  best-by-reward {o['best_by_reward']['score']:.3f} "
              f"{o['best_by_reward']['ci95']}  worst {o['worst_by_reward']['score']:.3f}  "
              f"oracle {o['oracle']['score']:.3f}  mixed groups {o['mixed_groups']['score']:.3f}  "
              f"pairwise AUC {o['pairwise_auc']:.3f} ({o['auc_pairs']} pairs)  "
              f"distinct {o['diversity']['distinct']:.3f}  hamming {o['diversity']['hamming']:.3f}")


if __name__ == "__main__":
    main()
