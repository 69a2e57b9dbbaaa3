#!/usr/bin/env python3
"""Could a self-reward rank the policy's images better than R_G does?  A
diagnostic on the validation split: for each validation prompt it draws a
group of G images as served (the model's default temperature and CFG), and
for each image computes, from the same model and nothing else:

  * r_g:        R_G, the mean log-prob of the prompt's tokens given the image
                (the dual self-reward GRPO uses today);
  * caption:    the model's own greedy caption of the image (/rollout,
                understanding, temperature 0);
  * margin:     R_G of the prompt minus R_G of that caption: how far the
                prompt falls below the model's best description of its own
                image (0 when they agree; the image's overall captioning
                confidence cancels);
  * sum_margin: the same with summed log-probs;
  * agree:      1 if the caption is the prompt, word for word, else 0;

and grades each image with the world's grader.  It reports each signal's
pairwise AUC within mixed groups and the pass rate of the group's
best-ranked image (95% bootstrap CIs over prompts), like headroom.py.

    experiments/dsr-shapes/reward_probe.py -n 200 -g 8 --out /tmp/probe.json

Validation split only (stream seed 2): a diagnostic, never a choice made on test.
"""
import argparse
import base64
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "shapes"))
sys.path.insert(0, HERE)
import evaluate as ev  # noqa: E402
from headroom import summarise  # noqa: E402

SIGNALS = ["r_g", "margin", "sum_margin", "agree", "agree_then_r_g"]


def signal(img, name):
    if name == "agree_then_r_g":  # agreement first, R_G breaks ties
        return img["agree"] * 100.0 + img["r_g"]
    return img[name]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint directory (default: the embedded default)")
    ap.add_argument("-n", type=int, default=200, help="validation prompts (scenes)")
    ap.add_argument("-g", "--group", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", action="store_true", help="also write every image's caption, rewards and verdict")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    proc, srv = ev.start_dsrd(args.model, args.threads)
    try:
        work = tempfile.mkdtemp(prefix="dsr-probe-")
        scenes, _ = ev.heldout_scenes(work, args.n, 60000, seed=ev.VAL_SEED)
        kinds = [s["kind"] for s in scenes]

        def group(i, s):
            body = {"task": "generation", "prompt": {"text": s["caption"]}, "n": args.group, "seed": i,
                    "score": True, "return_png": True}
            out = []
            for j, r in enumerate(srv.call("/rollout", body)["rollouts"]):
                path = os.path.join(work, f"gen-{i:05d}-{j:02d}.png")
                with open(path, "wb") as f:
                    f.write(base64.b64decode(r["png"]))
                cap = srv.call("/rollout", {"task": "understanding", "image": {"png": r["png"]}, "n": 1,
                                            "max_tokens": args.max_tokens, "temperature": 0,
                                            "seed": 0})["rollouts"][0]["text"].strip()
                sc = srv.call("/score", {"items": [
                    {"task": "generation", "prompt": {"text": s["caption"]}, "image": {"codes": r["codes"]}},
                    {"task": "generation", "prompt": {"text": cap}, "image": {"codes": r["codes"]}}]})["items"]
                out.append({"path": path, "caption": cap, "r_g": sc[0]["reward"],
                            "margin": sc[0]["reward"] - sc[1]["reward"],
                            "sum_margin": sc[0]["sum"] - sc[1]["sum"],
                            "agree": 1.0 if cap == s["caption"].strip() else 0.0})
            return out

        model = srv.call("/model")
        res = {"model": model.get("name"), "temperature": model.get("default_temperature"),
               "n": args.n, "group": args.group, "split": "validation (stream seed 2)"}
        gen = ev.run_parallel(group, scenes, args.workers, "image groups")
    finally:
        proc.terminate()
        proc.wait()

    verdicts = iter(ev.grade([(im["path"], s["caption"]) for s, g in zip(scenes, gen) for im in g]))
    for g in gen:
        for im in g:
            im["pass"] = next(verdicts)
    res["signals"] = {}
    for name in SIGNALS:
        groups = [[(signal(im, name), im["pass"]) for im in g] for g in gen]
        st = summarise(groups, kinds)["overall"]
        res["signals"][name] = {k: st[k] for k in ("single", "best_by_reward", "pairwise_auc", "oracle")}
        print(f"{name:15s} AUC {st['pairwise_auc']:.3f}  best-of-{args.group} {st['best_by_reward']['score']:.3f} "
              f"{st['best_by_reward']['ci95']}  single {st['single']['score']:.3f}", flush=True)
    res.update(agreement(gen, kinds))
    print(f"caption == prompt: passing {res['agree_rate']['passing']:.3f}  failing {res['agree_rate']['failing']:.3f} "
          f"(by kind {res['agree_rate']['failing_by_kind']})")
    if args.images:
        res["images"] = [[{k: im[k] for k in ("caption", "r_g", "margin", "agree", "pass")} for im in g] for g in gen]
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


def agreement(gen, kinds):
    """How often the model's greedy caption is the prompt, for passing and failing images (and failing by
    kind), and the median R_G of each."""
    ims = [(im, k) for g, k in zip(gen, kinds) for im in g]
    rate = lambda xs: sum(i["agree"] for i in xs) / max(1, len(xs))  # noqa: E731
    median = lambda xs: sorted(xs)[len(xs) // 2] if xs else None  # noqa: E731
    fails = [im for im, _ in ims if not im["pass"]]
    passes = [im for im, _ in ims if im["pass"]]
    return {"n_images": len(ims), "n_failing": len(fails),
            "agree_rate": {"passing": rate(passes), "failing": rate(fails),
                           "failing_by_kind": {k: round(rate([im for im, kk in ims if kk == k and not im["pass"]]), 3)
                                               for k in ev.KINDS}},
            "median_r_g": {"passing": median([i["r_g"] for i in passes]), "failing": median([i["r_g"] for i in fails])}}


if __name__ == "__main__":
    main()
