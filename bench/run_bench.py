#!/usr/bin/env python3
"""dsr benchmark driver (`make bench`): runs every benchmark once, turns the
raw numbers into ratios against this machine's own limits measured in the
same run, prints a table with PASS/MISS per target and writes results.json.

Sections: threading policy, machine limits (bench_machine), scoring forward
(bench_forward), rollouts (bench_decode), update (tools/bench_update, when
built), HTTP (dsrd + wrk, when built), PyTorch CPU peer (bench/torch_peer.py,
when Debian's python3-torch is installed: `make bench-deps`).  A section that
cannot run is recorded as {"skipped": "<why>"}.  Standard library only.
"""
import argparse
import base64
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_PYTHONS = ["/usr/bin/python3", sys.executable]

# Targets (issue 10).
FWD_PEAK_FRACTION = 0.60      # forward ≥ 60% of sgemm peak at ≥ 256 tokens
# decode ≥ 60% of its roofline: the bandwidth ceiling at G = 1 (the compute
# bound is far below it there), max(bandwidth, FLOPs at the sgemm peak) for
# the batched rollout groups, which are compute-bound from ~12 rows a step
DECODE_ROOFLINE_FRACTION = 0.60
BF16_DECODE_SPEEDUP = 1.6       # a G = 1 decode step with BF16 weights ≥ 1.6x faster than float32
UPDATE_PEAK_FRACTION = 0.40   # update ≥ 40% of sgemm peak
HEALTH_RPS = 20000            # /health ≥ 20k requests/s
SCORE_OVERHEAD_MS = 1.0       # HTTP overhead on a small /score < 1 ms (read as mean latency − mean compute, c=1)


def log(msg):
    print(msg, flush=True)


def run(cmd, env, timeout=900):
    """Runs cmd, echoing its output; returns (seconds, CompletedProcess)."""
    log("$ " + " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    sys.stdout.write(p.stdout)
    return time.time() - t0, p


def read_json(path):
    with open(path) as f:
        return json.load(f)


def env_with(policy, threads):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


def verdict(ok):
    return "PASS" if ok else "MISS"


def threading_policy(build, threads, tmp):
    """Time a forward and a short caption decode under each OpenMP wait policy
    (with OpenBLAS's OpenMP build one team runs GEMMs and loops, and spinning
    between regions saves a wake-up each; with its pthreads build the two
    pools would fight over the cores and passive won)."""
    out = {}
    for policy in ("passive", "default"):
        env = env_with(policy, threads)
        fj, dj = os.path.join(tmp, f"fwd_{policy}.json"), os.path.join(tmp, f"dec_{policy}.json")
        _, p1 = run([f"{build}/bench/bench_forward", "--case", "gen_607", "--reps", "1", "--json", fj], env)
        _, p2 = run([f"{build}/bench/bench_decode", "--what", "caption", "--groups", "8", "--caption-tokens", "12",
                     "--json", dj], env)
        if p1.returncode or p2.returncode:
            return {"skipped": f"bench_forward/bench_decode failed under OMP_WAIT_POLICY={policy}"}, "passive"
        out[policy] = {"forward_gen_607_s": read_json(fj)["cases"][0]["best_s"],
                       "caption_G8_step_s": read_json(dj)["runs"][0]["step_s"]}
    score = {k: v["forward_gen_607_s"] + 10 * v["caption_G8_step_s"] for k, v in out.items()}
    best = min(score, key=score.get)
    out["chosen"] = best
    out["speedup_passive_vs_default"] = {
        "forward": out["default"]["forward_gen_607_s"] / out["passive"]["forward_gen_607_s"],
        "caption_step": out["default"]["caption_G8_step_s"] / out["passive"]["caption_G8_step_s"]}
    return out, best


def machine(build, env, tmp):
    path = os.path.join(tmp, "machine.json")
    _, p = run([f"{build}/bench/bench_machine", "--mib", "256", "--json", path], env)
    if p.returncode:
        return {"skipped": "bench_machine failed"}
    m = read_json(path)
    m["sgemm_peak_gflops"] = max(s["gflops"] for s in m["sgemm"])
    mem = m["memory"]
    m["bandwidth_gbs"] = max(mem["read_gbs"], mem["copy_gbs"], mem["triad_gbs"])
    return m


def forward(build, env, tmp, peak, dump, weights="f32"):
    path = os.path.join(tmp, f"forward-{weights}.json")
    extra = ["--dump", dump] if weights == "f32" else ["--case", "both_1214"]
    _, p = run([f"{build}/bench/bench_forward", "--reps", "3", "--json", path, "--weights-dtype", weights] + extra,
               env)
    if p.returncode:
        return {"skipped": f"bench_forward --weights-dtype {weights} failed"}
    f = read_json(path)
    for c in f["cases"]:
        c["fraction_of_sgemm_peak"] = c["gflops"] / peak
    return f


def decode(build, env, tmp, bandwidth, peak, patches, weights="f32", kv="f32", groups="1,8,16"):
    path = os.path.join(tmp, f"decode-{weights}-{kv}.json")
    # 96 caption tokens: the prefill (timed apart and subtracted) is then a
    # smaller share of the total, and its noise of the step time
    _, p = run([f"{build}/bench/bench_decode", "--groups", groups, "--patches", str(patches), "--caption-tokens", "96",
                "--json", path, "--weights-dtype", weights, "--kv-dtype", kv], env)
    if p.returncode:
        return {"skipped": f"bench_decode --weights-dtype {weights} --kv-dtype {kv} failed"}
    d = read_json(path)
    for r in d["runs"]:
        # the least time a step can take: its bytes at the measured bandwidth
        r["ceiling_step_s_weights"] = r["weight_bytes_per_step"] / (bandwidth * 1e9)
        r["ceiling_step_s"] = (r["weight_bytes_per_step"] + r["kv_bytes_per_step"]) / (bandwidth * 1e9)
        r["fraction_of_bandwidth_ceiling"] = r["ceiling_step_s"] / r["step_s"]
        # the roofline: a step can be no faster than its bytes at the measured
        # bandwidth nor its FLOPs at the measured sgemm peak (from ~12 rows a
        # step on 2 cores the second bound is the larger)
        r["compute_step_s"] = r["flops_per_step"] / (peak * 1e9) if peak else 0.0
        r["roofline_step_s"] = max(r["ceiling_step_s"], r["compute_step_s"])
        r["fraction_of_roofline"] = r["roofline_step_s"] / r["step_s"]
        r["weight_gbs_achieved"] = r["weight_bytes_per_step"] / r["step_s"] / 1e9
    return d


def update(build, env, tmp, peak):
    exe = next((p for p in (f"{build}/bench/bench_update", f"{build}/tools/bench_update") if os.path.exists(p)), None)
    if not exe:
        return {"skipped": "bench_update not built (the training code, branch wt-train, is not merged)"}
    path = os.path.join(tmp, "update.json")
    _, p = run([exe, "--lora-rank", "16", "--json", path], env)
    if p.returncode or not os.path.exists(path):
        return {"skipped": f"{exe} failed or wrote no --json"}
    u = read_json(path)
    if "gflops" in u:
        u["fraction_of_sgemm_peak"] = u["gflops"] / peak
    if u.get("lora_best_s"):
        u["lora_over_full_time"] = u["lora_best_s"] / u["best_s"]
    # the torch peer's own batch (the two 607-row items, same config), for a
    # like-with-like GRPO comparison
    peer_path = os.path.join(tmp, "update_peer.json")
    _, p = run([exe, "--peer-batch", "--json", peer_path], env)
    if p.returncode == 0 and os.path.exists(peer_path):
        u["peer_batch"] = read_json(peer_path)
    return u


def torch_peer(env, tmp, dump, threads):
    py = next((p for p in TORCH_PYTHONS if os.path.exists(p) and subprocess.run(
        [p, "-c", "import torch, numpy"], capture_output=True).returncode == 0), None)
    if not py:
        return {"skipped": "python3-torch not installed (make bench-deps)"}
    path = os.path.join(tmp, "torch.json")
    _, p = run([py, os.path.join(HERE, "torch_peer.py"), "--weights", dump, "--threads", str(threads),
                "--reps", "1", "--json", path], env, timeout=1200)
    if not os.path.exists(path):
        return {"skipped": "torch_peer.py failed"}
    return read_json(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base, tries=600):
    """True once base/health answers 200 (polled every 0.2 s)."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def wrk(url, conns, seconds, body=None):
    """wrk at `conns` connections; POSTs body (JSON) when given."""
    cmd = ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "30s", "-s",
           os.path.join(HERE, "wrk_report.lua"), url]
    log("$ " + " ".join(cmd))
    env = dict(os.environ, WRK_BODY=body or "")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, env=env)
    line = [l for l in p.stdout.splitlines() if l.startswith("WRK_JSON ")]
    if p.returncode or not line:
        return {"error": (p.stdout + p.stderr)[-300:]}
    return json.loads(line[-1][len("WRK_JSON "):])


def compute_seconds(base, kind):
    """(sum, count) of dsrd's dsr_compute_seconds summary for one job kind."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    vals = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            name = f'dsr_compute_seconds_{part}{{kind="{kind}"}} '
            if line.startswith(name):
                vals[part] = float(line[len(name):])
    return vals.get("sum", 0.0), vals.get("count", 0.0)


def http(build, env):
    exe = next((p for p in (f"{build}/dsrd", f"{build}/server/dsrd") if os.path.exists(p)), None)
    if not exe:
        return {"skipped": "dsrd not built (the server, branch wt-server, is not merged)"}
    if not shutil.which("wrk"):
        return {"skipped": "wrk not installed (make bench-deps)"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    srv = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        if not wait_healthy(base):
            return {"skipped": f"{exe} did not answer /health within 120 s"}
        out = {"health": {}, "logprobs_small": {}, "score_small": {}}
        # the smallest scoring request: one context token, one target token
        small = '{"items":[{"context":{"tokens":[1]},"target":{"tokens":[2]}}]}'
        # a small /score on the embedded default model: R_G of a short prompt
        # for a 64-code image (VQ decode, 64 px vision tower, LM)
        with urllib.request.urlopen(base + "/model", timeout=10) as r:
            info = json.load(r)
        codes = [(37 * i) % info["codebook_size"] for i in range(info["num_image_tokens"])]
        score = json.dumps({"items": [{"task": "generation", "prompt": {"text": "a red circle"},
                                       "image": {"codes": codes}}]})
        for c in (1, 16, 64):
            out["health"][str(c)] = wrk(base + "/health", c, 5)
            out["logprobs_small"][str(c)] = wrk(base + "/logprobs", c, 5, small)
            before = compute_seconds(base, "score")
            w = wrk(base + "/score", c, 5, score)
            after = compute_seconds(base, "score")
            if "p50_ms" in w and after[1] > before[1]:
                # mean compute per scoring batch; at c = 1 a batch is one
                # request, so mean latency − mean compute is the mean time
                # spent outside the model (HTTP, JSON, queue hand-off)
                w["compute_ms"] = 1e3 * (after[0] - before[0]) / (after[1] - before[1])
                w["overhead_mean_ms"] = w["mean_ms"] - w["compute_ms"]
            out["score_small"][str(c)] = w
        return out
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def default_model(build, env, tmp):
    """The embedded default model (dsr-shapes) at its own work: a CFG rollout of
    8 images, a /score of 16 items (8 captions, 8 images of rendered scenes),
    and GRPO steps of dsr-train (groups of 8 captions and 8 images)."""
    exe = f"{build}/dsrd"
    cli, trainer = f"{build}/dsr", f"{build}/dsr-train"
    if not all(os.path.exists(p) for p in (exe, cli, trainer)):
        return {"skipped": "dsrd, dsr or dsr-train not built"}
    scenes = os.path.join(tmp, "scenes")
    subprocess.run([cli, "world", "render", "--seed", "3", "-n", "8", "--out", scenes], check=True,
                   capture_output=True)
    caps = [json.loads(l) for l in open(os.path.join(scenes, "captions.jsonl"))]
    pngs = []
    for c in caps:
        with open(os.path.join(scenes, c["file"]), "rb") as f:
            pngs.append(base64.b64encode(f.read()).decode())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    srv = subprocess.Popen([exe, "--port", str(port), "--admin-key", "bench"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    def post(path, body, key=None):
        req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        if key:
            req.add_header("Authorization", "Bearer " + key)
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=300) as r:
            json.load(r)
        return time.perf_counter() - t0

    try:
        if not wait_healthy(base):
            return {"skipped": f"{exe} did not answer /health within 120 s"}
        out = {}
        roll = {"task": "generation", "prompt": {"text": caps[0]["caption"]}, "n": 8, "seed": 1}
        post("/rollout", roll)
        out["rollout_8_images_s"] = sorted(post("/rollout", roll) for _ in range(5))[2]
        items = [{"task": "understanding", "image": {"png": p}, "response": {"text": c["caption"]}}
                 for p, c in zip(pngs, caps)]
        items += [{"task": "generation", "prompt": {"text": c["caption"]}, "image": {"png": p}}
                  for p, c in zip(pngs, caps)]
        post("/score", {"items": items})
        out["score_16_items_s"] = sorted(post("/score", {"items": items}) for _ in range(9))[4]
        prompts = os.path.join(tmp, "prompts.txt")
        with open(prompts, "w") as f:
            f.write("\n".join(c["caption"] for c in caps) + "\n")
        log_path = os.path.join(tmp, "train.jsonl")
        steps = 3
        subprocess.run([trainer, "--server", base, "--admin-key", "bench", "--images", scenes, "--prompts", prompts,
                        "--steps", str(steps), "--group-size", "8", "--batch-images", "2", "--batch-prompts", "2",
                        "--log", log_path, "--state", os.path.join(tmp, "train.state"), "--max-tokens", "24"],
                       env=env, check=True, capture_output=True, timeout=900)
        recs = [json.loads(l) for l in open(log_path) if '"seconds"' in l]
        secs = [r["seconds"] for r in recs if "loss" in r]
        out["grpo_step_s"] = sorted(secs)[len(secs) // 2]
        out["grpo_steps_per_s"] = 1 / out["grpo_step_s"]
        return out
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        return {"skipped": f"default-model benchmark failed: {e}"}
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def summarize(res):
    """Rows of (measure, value, target, verdict) for the table."""
    rows = []
    m, f, d, u, t, h = (res.get(k, {}) for k in ("machine", "forward", "decode", "update", "torch", "http"))
    if "sgemm_peak_gflops" in m:
        rows.append(("sgemm peak (best shape)", f"{m['sgemm_peak_gflops']:.1f} GFLOP/s, OpenBLAS "
                     f"{m.get('blas_kernels', '?')} kernels", "", ""))
        if "fma256_gflops" in m:
            rows.append(("FMA in registers 256 / 512-bit",
                         f"{m['fma256_gflops']:.1f} / {m.get('fma512_gflops', 0):.1f} GFLOP/s", "", ""))
        mem = m["memory"]
        rows.append(("memory read / copy / triad",
                     f"{mem['read_gbs']:.1f} / {mem['copy_gbs']:.1f} / {mem['triad_gbs']:.1f} GB/s", "", ""))
    for c in f.get("cases", []):
        ok = c["fraction_of_sgemm_peak"] >= FWD_PEAK_FRACTION
        rows.append((f"forward {c['case']}", f"{c['tokens_per_s']:.0f} tok/s, {c['gflops']:.1f} GFLOP/s = "
                     f"{100 * c['fraction_of_sgemm_peak']:.0f}% of peak", f">= {100 * FWD_PEAK_FRACTION:.0f}%",
                     verdict(ok) if c["rows"] >= 256 else ""))
    d16 = res.get("decode_bf16", {})
    d16kv = res.get("decode_bf16_kv", {})
    for r in d.get("runs", []) + d16.get("runs", []) + d16kv.get("runs", []):
        ok = r["fraction_of_roofline"] >= DECODE_ROOFLINE_FRACTION
        label = (" (bf16 weights)" if r in d16.get("runs", []) else
                 " (bf16 weights + KV)" if r in d16kv.get("runs", []) else "")
        rows.append((f"{r['what']} decode G={r['G']}" + label,
                     f"{r['decode_tokens_per_s']:.1f} tok/s, step {1e3 * r['step_s']:.0f} ms "
                     f"({(r['weight_bytes_per_step'] + r['kv_bytes_per_step']) / r['step_s'] / 1e9:.1f} GB/s) vs ceiling "
                     f"{1e3 * r['ceiling_step_s']:.0f} ms = {100 * r['fraction_of_bandwidth_ceiling']:.0f}%"
                     f" (roofline {1e3 * r['roofline_step_s']:.0f} ms: {100 * r['fraction_of_roofline']:.0f}%)",
                     f">= {100 * DECODE_ROOFLINE_FRACTION:.0f}% roofline", verdict(ok)))
    # BF16 weights: the scoring forward's throughput against float32 (packed batch)
    fb = next((c for c in res.get("forward_bf16", {}).get("cases", []) if c["case"] == "both_1214"), None)
    ff = next((c for c in f.get("cases", []) if c["case"] == "both_1214"), None)
    if fb and ff:
        ratio = ff["best_s"] / fb["best_s"]
        res.setdefault("ratios", {})["bf16_forward_throughput_vs_f32"] = ratio
        rows.append(("forward 1214 rows: bf16 / f32 throughput", f"{ratio:.2f}", ">= 0.90", verdict(ratio >= 0.90)))
    # BF16 weights: the decode step's speed-up over float32, same group
    for r16 in d16.get("runs", []):
        r32 = next((r for r in d.get("runs", []) if r["what"] == r16["what"] and r["G"] == r16["G"]), None)
        if r32:
            ratio = r32["step_s"] / r16["step_s"]
            res.setdefault("ratios", {})[f"bf16_step_speedup_{r16['what']}_G{r16['G']}"] = ratio
            target = r16["G"] == 1
            rows.append((f"{r16['what']} decode G={r16['G']}: f32 / bf16 step",
                         f"{1e3 * r32['step_s']:.0f} ms / {1e3 * r16['step_s']:.0f} ms = {ratio:.2f}x",
                         ">= 1.6x" if target else "", verdict(ratio >= BF16_DECODE_SPEEDUP) if target else ""))
    if "skipped" in u:
        rows.append(("GRPO update (dsr)", "skipped: " + u["skipped"], f">= {100 * UPDATE_PEAK_FRACTION:.0f}%", "n/a"))
    elif "fraction_of_sgemm_peak" in u:
        rows.append(("GRPO update (dsr)", f"{u['gflops']:.1f} GFLOP/s = {100 * u['fraction_of_sgemm_peak']:.0f}%",
                     f">= {100 * UPDATE_PEAK_FRACTION:.0f}%", verdict(u["fraction_of_sgemm_peak"] >= UPDATE_PEAK_FRACTION)))
    if "skipped" in t:
        rows.append(("PyTorch peer", "skipped: " + t["skipped"], "", "n/a"))
    elif t:
        rows.append(("torch cross-check (log-probs)", f"max rel err {t['crosscheck_rel_err']:.2g}", "<= 1e-4",
                     "PASS" if t["crosscheck_rel_err"] <= 1e-4 else "FAIL"))
        both = next((c for c in f.get("cases", []) if c["case"] == "both_1214"), None)
        if both:
            ratio = t["forward_best_s"] / both["best_s"]
            res.setdefault("ratios", {})["forward_dsr_speedup_vs_torch"] = ratio
            rows.append(("forward 1214 rows: torch / dsr time", f"{t['forward_best_s']:.2f} s / {both['best_s']:.2f} s"
                         f" = {ratio:.2f}x", "> 1x", verdict(ratio > 1)))
            g = 3 * both["gflop"] / t["grpo_fwd_bwd_best_s"]
            rows.append(("torch GRPO fwd+bwd 1214 rows", f"{t['grpo_fwd_bwd_best_s']:.2f} s, ~{g:.0f} GFLOP/s "
                         f"(3x forward FLOPs)", "", ""))
        pb = u.get("peer_batch")
        if pb and "fwd_bwd_s" in pb:
            # the same batch on both sides (und 607 + gen 607 rows, mid config):
            # forward + backward, and the AdamW step, each timed apart
            ratio = t["grpo_fwd_bwd_best_s"] / pb["fwd_bwd_s"]
            res.setdefault("ratios", {})["grpo_dsr_speedup_vs_torch"] = ratio
            rows.append(("GRPO fwd+bwd 1214 rows: torch / dsr time",
                         f"{t['grpo_fwd_bwd_best_s']:.2f} s / {pb['fwd_bwd_s']:.2f} s = {ratio:.2f}x", "> 1x",
                         verdict(ratio > 1)))
            rows.append(("AdamW step: torch / dsr time", f"{t['adamw_step_s']:.2f} s / {pb['adamw_s']:.2f} s", "", ""))
        elif "best_s" in u and "rows" in u:
            # only the default batch ran (samples x rows): compare time per row
            torch_per_row = t["grpo_fwd_bwd_best_s"] / 1214
            dsr_per_row = u["best_s"] / u["rows"]
            ratio = torch_per_row / dsr_per_row
            rows.append(("GRPO step per row: torch / dsr time",
                         f"{1e3 * torch_per_row:.2f} ms / {1e3 * dsr_per_row:.2f} ms = {ratio:.2f}x", "> 1x",
                         verdict(ratio > 1)))
        else:
            rows.append(("GRPO step: torch / dsr time", "dsr side skipped", "> 1x", "n/a"))
    dm = res.get("default_model", {})
    if "skipped" in dm:
        rows.append(("default model (dsr-shapes)", "skipped: " + dm["skipped"], "", "n/a"))
    elif dm:
        rows.append(("dsr-shapes /rollout of 8 CFG images", f"{1e3 * dm['rollout_8_images_s']:.0f} ms (median of 5)",
                     "< 1000 ms", verdict(dm["rollout_8_images_s"] < 1.0)))
        rows.append(("dsr-shapes /score of 16 items", f"{1e3 * dm['score_16_items_s']:.0f} ms (median of 9)",
                     "< 100 ms", verdict(dm["score_16_items_s"] < 0.1)))
        rows.append(("dsr-shapes GRPO step (2+2 groups of 8)",
                     f"{dm['grpo_step_s']:.2f} s = {dm['grpo_steps_per_s']:.2f} steps/s (dsr-train, median)", "", ""))
    if "skipped" in h:
        rows.append(("HTTP /health, /score", "skipped: " + h["skipped"], "", "n/a"))
    elif h:
        for c, w in h["health"].items():
            if "rps" in w:
                rows.append((f"/health c={c}", f"{w['rps']:.0f} req/s, p50 {w['p50_ms']:.2f} ms",
                             f">= {HEALTH_RPS}", verdict(w["rps"] >= HEALTH_RPS)))
        for c, w in h.get("score_small", {}).items():
            if "overhead_mean_ms" in w:
                rows.append((f"small /score c={c}", f"p50 {w['p50_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms, compute "
                             f"{w['compute_ms']:.2f} ms/batch" + (f"; overhead {w['overhead_mean_ms']:.2f} ms (mean)"
                                                                  if c == "1" else "")
                             + (f", {w['errors']} errors" if w.get("errors") else ""),
                             f"overhead < {SCORE_OVERHEAD_MS} ms (c=1)" if c == "1" else "",
                             verdict(w["overhead_mean_ms"] < SCORE_OVERHEAD_MS) if c == "1" else ""))
        for c, w in h["logprobs_small"].items():
            if "p50_ms" in w:
                rows.append((f"small /logprobs c={c}", f"p50 {w['p50_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms",
                             "", ""))
    return rows


def print_table(rows):
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    lines = [f"| {'measure'.ljust(w0)} | {'value'.ljust(w1)} | {'target'.ljust(w2)} | verdict |",
             f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|---------|"]
    lines += [f"| {a.ljust(w0)} | {b.ljust(w1)} | {c.ljust(w2)} | {d.ljust(7)} |" for a, b, c, d in rows]
    return "\n".join(lines)


SECTIONS = ("forward", "decode", "update", "http", "default_model", "torch")


def main():
    ap = argparse.ArgumentParser(description="dsr benchmarks")
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--patches", type=int, default=12,
                    help="image grid side for the image-decode runs (12: 144 codes, bounds the run time)")
    ap.add_argument("--only", default=",".join(SECTIONS), metavar="LIST",
                    help="run only these sections (comma list of " + ", ".join(SECTIONS) +
                    "; the machine is always measured): e.g. decode to re-measure the rollout phase alone")
    ap.add_argument("--policy", choices=["auto", "passive", "active", "default"], default="auto",
                    help="OMP_WAIT_POLICY; auto measures passive vs default and keeps the faster")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if not only <= set(SECTIONS):
        ap.error(f"--only: unknown section(s) {', '.join(sorted(only - set(SECTIONS)))}")
    t_start = time.time()
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(), "cpu": platform.processor(),
           "cores": os.cpu_count(), "threads": args.threads, "loadavg_start": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            res["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with tempfile.TemporaryDirectory() as tmp:
        if args.policy == "auto":
            res["threading"], policy = threading_policy(args.build, args.threads, tmp)
        else:
            res["threading"], policy = {"chosen": args.policy, "note": "set by --policy"}, args.policy
        env = env_with(policy, args.threads)
        res["omp_wait_policy"] = policy
        res["machine"] = machine(args.build, env, tmp)
        peak = res["machine"].get("sgemm_peak_gflops")
        bw = res["machine"].get("bandwidth_gbs")
        dump = os.path.join(args.build, "bench", "mid.safetensors")
        if "forward" in only:
            res["forward"] = forward(args.build, env, tmp, peak, dump) if peak else {"skipped": "no sgemm peak"}
            res["forward_bf16"] = (forward(args.build, env, tmp, peak, dump, "bf16") if peak
                                   else {"skipped": "no sgemm peak"})
        if "decode" in only:
            res["decode"] = decode(args.build, env, tmp, bw, peak, args.patches) if bw else {"skipped": "no bandwidth"}
            res["decode_bf16"] = (decode(args.build, env, tmp, bw, peak, args.patches, "bf16") if bw
                                  else {"skipped": "no bandwidth"})
            # the rollout phase of an RL step with everything BF16 (dsrd --weights-dtype bf16 --kv-dtype bf16)
            res["decode_bf16_kv"] = (decode(args.build, env, tmp, bw, peak, args.patches, "bf16", "bf16", "8,16")
                                     if bw else {"skipped": "no bandwidth"})
        if "update" in only:
            res["update"] = update(args.build, env, tmp, peak) if peak else {"skipped": "no sgemm peak"}
        if "http" in only:
            res["http"] = http(args.build, env)
        if "default_model" in only:
            res["default_model"] = default_model(args.build, env, tmp)
        if "torch" in only:  # reads the weights dump the forward section writes
            res["torch"] = torch_peer(env, tmp, dump, args.threads) if os.path.exists(dump) else {
                "skipped": "no weights dump (bench_forward failed)"}
    res["loadavg_end"] = os.getloadavg()
    res["wall_s"] = time.time() - t_start
    rows = summarize(res)
    res["table"] = print_table(rows)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    log("\n" + res["table"])
    log(f"\nOMP_WAIT_POLICY={policy}; load average {res['loadavg_start'][0]:.1f} at start, "
        f"{res['loadavg_end'][0]:.1f} at end; {res['wall_s']:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
