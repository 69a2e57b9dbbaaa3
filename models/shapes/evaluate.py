#!/usr/bin/env python3
"""Scores a model on held-out shapes-world scenes, through dsrd's public API.

    make eval-default                       # the embedded default model
    models/shapes/evaluate.py --model DIR   # any checkpoint (starts build/dsrd)
    models/shapes/evaluate.py --server URL  # a running daemon

Measured (WORLD.md's graders, via `dsr world grade`):
  * understanding score: the greedy caption (and one sampled at the served
    defaults) of each held-out scene satisfies the description check on the
    scene's render; per kind and overall;
  * generation score: the image generated for each held-out prompt (CFG as
    served; greedy and at the served sampling defaults) satisfies the prompt;
  * VQ round trip: render -> encode -> decode -> the detector agrees with the
    scene (`dsr world roundtrip`, in-process);
  * self-reward accuracy: R_U of the true caption > R_U of a one-attribute-
    perturbed caption for the scene's image; R_G of the prompt for the true
    image > for the perturbed scene's image.

Held-out scenes come from the test stream (seed 3); any scene identical to a
training scene (seed 1, --train-scenes of them) is skipped.  Caption strings
themselves recur: the grammar has only 1350 of them.  95% confidence
intervals are Wilson intervals over items.  Writes --out (JSON) and prints a
table.  Python standard library only.
"""
import argparse
import base64
import concurrent.futures as cf
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ["position", "relation", "counting"]
TEST_SEED, TRAIN_SEED, VAL_SEED = 3, 1, 2


QUIET = False


def log(msg):
    if not QUIET:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wilson(k, n, z=1.96):
    if n == 0:
        return [0.0, 0.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]


def summary(passes, kinds):
    out = {}
    for k in KINDS + ["overall"]:
        sel = [p for p, kk in zip(passes, kinds) if k == "overall" or kk == k]
        n, s = len(sel), sum(sel)
        out[k] = {"score": s / n if n else 0.0, "ci95": wilson(s, n), "n": n}
    return out


class Server:
    def __init__(self, url, key=None):
        self.url, self.key = url.rstrip("/"), key

    def call(self, path, body=None, timeout=600):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json"})
        if self.key:
            req.add_header("Authorization", "Bearer " + self.key)
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.load(r)
            except urllib.error.HTTPError as e:
                if e.code < 500 or attempt == 4:
                    raise RuntimeError(f"{path}: HTTP {e.code}: {e.read()[:300]!r}")
            except OSError:
                if attempt == 4:
                    raise
            time.sleep(0.5 * 2 ** attempt)


def start_dsrd(model, threads):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    args = [os.path.join(ROOT, "build", "dsrd"), "--port", str(port)]
    if model:
        args += ["--model", model]
    if threads:
        args += ["--threads", str(threads)]
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    log_f = open(os.path.join(tempfile.gettempdir(), f"dsrd-eval-{port}.log"), "w")
    proc = subprocess.Popen(args, stdout=log_f, stderr=subprocess.STDOUT, env=env)
    srv = Server(f"http://127.0.0.1:{port}")
    for _ in range(600):
        try:
            srv.call("/health", timeout=2)
            return proc, srv
        except Exception:
            if proc.poll() is not None:
                sys.exit(f"dsrd exited; see {log_f.name}")
            time.sleep(0.2)
    sys.exit("dsrd did not become ready")


def dsr(*args, stdin=None):
    r = subprocess.run([os.path.join(ROOT, "build", "dsr"), *args], input=stdin, capture_output=True, text=True)
    if r.returncode not in (0, 3):
        raise RuntimeError(f"dsr {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def scene_key(s):
    return json.dumps([s["kind"], s["caption"], s["objects"]], sort_keys=True)


def heldout_scenes(workdir, n, train_scenes, seed=TEST_SEED):
    """n scenes of the test stream that are not training scenes, rendered with
    their perturbed twins."""
    train = set()
    if train_scenes:
        for line in dsr("world", "sample", "--seed", str(TRAIN_SEED), "-n", str(train_scenes)).splitlines():
            train.add(scene_key(json.loads(line)))
    want = n + n // 4 + 16
    dsr("world", "render", "--seed", str(seed), "-n", str(want), "--perturbed", "--out", workdir)
    scenes = []
    with open(os.path.join(workdir, "captions.jsonl")) as f:
        for line in f:
            s = json.loads(line)
            if scene_key(s) in train:
                continue
            s["path"] = os.path.join(workdir, s["file"])
            s["perturbed_path"] = os.path.join(workdir, s["perturbed_file"])
            scenes.append(s)
    if len(scenes) < n:
        sys.exit(f"only {len(scenes)} held-out scenes after removing training duplicates")
    return scenes[:n], want - len(scenes)


def png_b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def grade(pairs):
    """[(image path, caption)] -> [bool] through `dsr world grade --batch`."""
    lines = "".join(json.dumps({"image": p, "caption": c}) + "\n" for p, c in pairs)
    out = [json.loads(l) for l in dsr("world", "grade", "--batch", stdin=lines).splitlines()]
    return [bool(o.get("pass")) for o in out]


def run_parallel(fn, items, workers, what):
    results = [None] * len(items)
    t0 = time.time()
    with cf.ThreadPoolExecutor(workers) as ex:
        futs = {ex.submit(fn, i, it): i for i, it in enumerate(items)}
        for done, fut in enumerate(cf.as_completed(futs), 1):
            results[futs[fut]] = fut.result()
            if done % 100 == 0 or done == len(items):
                rate = done / (time.time() - t0)
                log(f"{what}: {done}/{len(items)}, {rate:.1f}/s, ETA {(len(items) - done) / rate:.0f} s")
    return results


def evaluate(srv, scenes, workdir, workers, sampled=True, per_item=False, cfg_scale=None, generation_only=False,
             want=None, sample_temperature=None, sample_top_p=None):
    """Scores through the API; per_item adds each item's verdict (0/1) under
    "items" (the experiment bootstraps over them).  want: the set of
    "{understanding,generation}_{greedy,sampled}" keys to measure (default:
    all that sampled / generation_only allow).  sample_temperature: the
    sampled mode's temperature, sample_top_p its nucleus (default: the
    served ones)."""
    res = {}
    kinds = [s["kind"] for s in scenes]
    modes = [("greedy", 0.0, None)] + ([("sampled", sample_temperature, sample_top_p)] if sampled else [])
    if want is None:
        want = {f"{d}_{m}" for d in ("understanding", "generation") for m, _, _ in modes}

    for mode, temp, top_p in modes:
        def caption(i, s, temp=temp, top_p=top_p):
            body = {"task": "understanding", "image": {"png": png_b64(s["path"])}, "n": 1, "max_tokens": 24,
                    "seed": i, "score": False}
            if temp is not None:
                body["temperature"] = temp
            if top_p is not None:
                body["top_p"] = top_p
            return srv.call("/rollout", body)["rollouts"][0]["text"]

        if not generation_only and f"understanding_{mode}" in want:
            caps = run_parallel(caption, scenes, workers, f"understanding ({mode})")
            passes = grade([(s["path"], c) for s, c in zip(scenes, caps)])
            res[f"understanding_{mode}"] = summary(passes, kinds)
            if per_item:
                res[f"understanding_{mode}"]["items"] = [int(p) for p in passes]
            res[f"understanding_{mode}"]["examples"] = [{"caption": s["caption"], "generated": c, "pass": p}
                                                         for s, c, p in list(zip(scenes, caps, passes))[:12]]

        if f"generation_{mode}" not in want:
            continue
        gen_dir = os.path.join(workdir, f"gen-{mode}")
        os.makedirs(gen_dir, exist_ok=True)

        def generate(i, s, temp=temp, top_p=top_p):
            body = {"task": "generation", "prompt": {"text": s["caption"]}, "n": 1, "seed": i, "score": False,
                    "return_png": True}
            if temp is not None:
                body["temperature"] = temp
            if top_p is not None:
                body["top_p"] = top_p
            if cfg_scale is not None:
                body["cfg_scale"] = cfg_scale
            png = srv.call("/rollout", body)["rollouts"][0]["png"]
            path = os.path.join(gen_dir, f"{i:06d}.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(png))
            return path

        paths = run_parallel(generate, scenes, workers, f"generation ({mode})")
        passes = grade([(p, s["caption"]) for s, p in zip(scenes, paths)])
        res[f"generation_{mode}"] = summary(passes, kinds)
        if per_item:
            res[f"generation_{mode}"]["items"] = [int(p) for p in passes]

    if generation_only:
        return res

    # self-reward accuracy on true vs one-attribute-perturbed pairs
    def rewards(i, s):
        img, pimg = {"png": png_b64(s["path"])}, {"png": png_b64(s["perturbed_path"])}
        items = [{"task": "understanding", "image": img, "response": {"text": s["caption"]}},
                 {"task": "understanding", "image": img, "response": {"text": s["perturbed_caption"]}},
                 {"task": "generation", "prompt": {"text": s["caption"]}, "image": img},
                 {"task": "generation", "prompt": {"text": s["caption"]}, "image": pimg}]
        r = [it["reward"] for it in srv.call("/score", {"items": items})["items"]]
        return r[0] > r[1], r[2] > r[3], r[0], r[2]

    rw = run_parallel(rewards, scenes, workers, "self-reward accuracy")
    res["self_reward_accuracy"] = {
        "r_u": summary([x[0] for x in rw], kinds),
        "r_g": summary([x[1] for x in rw], kinds),
        "mean_r_u_true": sum(x[2] for x in rw) / len(rw),
        "mean_r_g_true": sum(x[3] for x in rw) / len(rw),
    }
    return res


def roundtrip(model, n, seed=TEST_SEED):
    out = json.loads(dsr("world", "roundtrip", "--model", model or "builtin:shapes", "--seed", str(seed),
                         "-n", str(n), "--json"))
    return out


def table(res):
    rows = []
    for key in ["understanding_greedy", "understanding_sampled", "generation_greedy", "generation_sampled"]:
        if key not in res:
            continue
        r = res[key]
        cells = [f"{100 * r[k]['score']:5.1f} [{100 * r[k]['ci95'][0]:.1f}, {100 * r[k]['ci95'][1]:.1f}]"
                 for k in KINDS + ["overall"]]
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    sr = res["self_reward_accuracy"]
    for k in ("r_u", "r_g"):
        r = sr[k]
        cells = [f"{100 * r[kk]['score']:5.1f} [{100 * r[kk]['ci95'][0]:.1f}, {100 * r[kk]['ci95'][1]:.1f}]"
                 for kk in KINDS + ["overall"]]
        rows.append(f"| self-reward accuracy {k.upper()} | " + " | ".join(cells) + " |")
    if "vq_roundtrip" in res:
        v = res["vq_roundtrip"]
        rows.append(f"| VQ round trip | | | | {100 * v['agree']:5.1f} (n={v['n']}) |")
    head = "| measure (%) | position | relation | counting | overall |\n|---|---|---|---|---|"
    s = res.get("served")
    trunc = "".join(f", {k} {s[k]:g}" for k, off in (("top_p", 1), ("top_k", 0)) if s and s.get(k, off) != off)
    note = f"sampled = the served defaults: temperature {s['temperature']:g}{trunc}, CFG {s['cfg_scale']:g}\n\n" \
        if s else ""
    return note + head + "\n" + "\n".join(rows)


def model_name(model_dir, served):
    """The recipe's name of a checkpoint directory (what dsrd reports once it
    is the shipped default) rather than the directory's basename."""
    try:
        return json.load(open(os.path.join(model_dir, "recipe.json")))["name"]
    except (TypeError, OSError, ValueError, KeyError):
        return served


def main():
    ap = argparse.ArgumentParser(description="Evaluate a shapes-world model through dsrd's API.")
    ap.add_argument("--server", help="a running dsrd (default: start build/dsrd)")
    ap.add_argument("--model", help="--model for the dsrd started here (default: the embedded default)")
    ap.add_argument("--api-key")
    ap.add_argument("-n", type=int, default=500, help="held-out scenes / prompts (default 500)")
    ap.add_argument("--train-scenes", type=int, default=60000, help="training scenes to exclude (seed 1)")
    ap.add_argument("--split", choices=["test", "val"], default="test")
    ap.add_argument("--workers", type=int, default=4, help="concurrent requests")
    ap.add_argument("--threads", type=int, default=0, help="dsrd --threads (default: all cores)")
    ap.add_argument("--no-sampled", action="store_true", help="greedy only")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--cfg-sweep", help="comma-separated CFG scales: generation scores for each (use --split val: "
                                        "the served default is chosen on validation)")
    ap.add_argument("--json-line", action="store_true", help="print the results as one JSON line, last")
    ap.add_argument("--quiet", action="store_true", help="no progress lines, no table")
    args = ap.parse_args()
    global QUIET
    QUIET = args.quiet
    proc = None
    if args.server:
        srv = Server(args.server, args.api_key)
    else:
        proc, srv = start_dsrd(args.model, args.threads)
    try:
        info = srv.call("/model")
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="dsr-eval-") as work:
            seed = TEST_SEED if args.split == "test" else VAL_SEED
            scenes, dropped = heldout_scenes(work, args.n, args.train_scenes, seed)
            log(f"{len(scenes)} held-out scenes ({dropped} training duplicates skipped); model {info['name']}")
            if args.cfg_sweep:
                sweep = {}
                for cfg in [float(x) for x in args.cfg_sweep.split(",")]:
                    r = evaluate(srv, scenes, work, args.workers, cfg_scale=cfg, generation_only=True)
                    sweep[str(cfg)] = {m: r[f"generation_{m}"]["overall"] for m in ("greedy", "sampled")}
                    print(f"cfg {cfg:5.2f}: generation greedy {100 * sweep[str(cfg)]['greedy']['score']:.1f}%, "
                          f"sampled {100 * sweep[str(cfg)]['sampled']['score']:.1f}%", flush=True)
                best = max(sweep, key=lambda c: sweep[c]["sampled"]["score"])
                print(f"best on {args.split} (sampled): cfg {best}")
                if args.out:
                    json.dump({"split": args.split, "n": len(scenes), "sweep": sweep, "best": float(best)},
                              open(args.out, "w"), indent=1)
                return
            res = evaluate(srv, scenes, work, args.workers, sampled=not args.no_sampled)
        if not args.server:
            res["vq_roundtrip"] = roundtrip(args.model, args.n, seed)
        res["served"] = {"temperature": info.get("default_temperature", 1.0), "cfg_scale": info["default_cfg_scale"],
                         "top_p": info.get("default_top_p", 1.0), "top_k": info.get("default_top_k", 0)}
        res.update({"model": model_name(args.model, info["name"]), "split": args.split, "seed": seed, "n": len(scenes),
                    "training_duplicates_skipped": dropped, "seconds": round(time.time() - t0, 1),
                    "summary": {"understanding_greedy": res["understanding_greedy"]["overall"]["score"],
                                "generation_sampled": res.get("generation_sampled", res["generation_greedy"])
                                ["overall"]["score"],
                                "generation_greedy": res["generation_greedy"]["overall"]["score"],
                                "self_reward_accuracy_r_u": res["self_reward_accuracy"]["r_u"]["overall"]["score"],
                                "self_reward_accuracy_r_g": res["self_reward_accuracy"]["r_g"]["overall"]["score"],
                                "vq_roundtrip": res.get("vq_roundtrip", {}).get("agree")}})
        if not args.quiet:
            print(table(res))
        if args.json_line:
            print(json.dumps(res, separators=(",", ":")))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
            log(f"wrote {args.out}")
    finally:
        if proc:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
