#!/usr/bin/env python3
"""The seventh and eighth studies' test comparison: generation sampled at
the served sampling (the shipped default's generation_config.json
temperature and top_p, chosen on validation by ship.py --temperature-sweep
and --top-p-sweep) against another (--against temperature, --against-top-p),
on the same 500 test prompts with the same seeds, paired (95% bootstrap CI
over prompts).  A report of the choice already made, not a choice.

    /usr/bin/python3 experiments/dsr-shapes/served_sampling.py \\
        --out experiments/dsr-shapes/served-sampling/test.json
    /usr/bin/python3 experiments/dsr-shapes/served_sampling.py --against 0.8 --against-top-p 1 \\
        --out experiments/dsr-shapes/served-sampling/test-top-p.json
"""
import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "shapes"))
import evaluate as ev  # noqa: E402
from report import runs_delta  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint directory (default: the embedded default)")
    ap.add_argument("-n", type=int, default=500, help="test prompts")
    ap.add_argument("--against", type=float, default=1.0, help="the temperature compared with the served one")
    ap.add_argument("--against-top-p", type=float, default=1.0, help="the top_p compared with the served one")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--out", required=True, help="JSON to write")
    args = ap.parse_args()
    proc, srv = ev.start_dsrd(args.model, 0)
    try:
        info = srv.call("/model")
        served = info.get("default_temperature", 1.0)
        served_top_p = info.get("default_top_p", 1.0)
        with tempfile.TemporaryDirectory(prefix="dsr-served-") as work:
            scenes, _ = ev.heldout_scenes(work, args.n, 60000, ev.TEST_SEED)
            res = {}
            for name, temp, top_p in (("served", None, None), ("against", args.against, args.against_top_p)):
                r = ev.evaluate(srv, scenes, work, args.workers, per_item=True, generation_only=True,
                                want={"generation_sampled"}, sample_temperature=temp, sample_top_p=top_p)
                res[name] = r["generation_sampled"]
    finally:
        proc.terminate()
        proc.wait()
    delta = runs_delta([res["served"]["items"]], [res["against"]["items"]])
    out = {"model": info["name"], "split": "test", "n": len(scenes), "served_temperature": served,
           "served_top_p": served_top_p, "against_temperature": args.against,
           "against_top_p": args.against_top_p, "cfg_scale": info["default_cfg_scale"],
           "generation_served": {k: v for k, v in res["served"].items() if k != "items"},
           "generation_against": {k: v for k, v in res["against"].items() if k != "items"},
           "delta": delta}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    o = lambda r: f"{100 * r['overall']['score']:.1f}%"  # noqa: E731
    print(f"generation at temperature {served:g} top_p {served_top_p:g} (served) {o(res['served'])}, "
          f"at {args.against:g} top_p {args.against_top_p:g} "
          f"{o(res['against'])}: {100 * delta['mean']:+.1f} [{100 * delta['ci_low']:+.1f}, "
          f"{100 * delta['ci_high']:+.1f}] (paired, {len(scenes)} test prompts)")


if __name__ == "__main__":
    main()
