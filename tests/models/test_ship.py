#!/usr/bin/env python3
"""models/shapes/ship.py's sampling rule (the seventh and eighth studies',
fixed in experiments/dsr-shapes/README.md): the best mean of the two
one-sample pass rates wins, and a candidate within 0.5 points of the best
loses to a higher value; top_p candidates whose images come out too alike
(two of a group differ in under --min-hamming of their codes) are out.
Worked cases, no daemon:

  * means 85.9, 87.1, 88.4, 88.7 at 1.0, 0.9, 0.8, 0.7 (the sweep measured
    on dsr6): 0.8 (0.3 below the best, 0.7) wins;
  * 0.7 a full point ahead of 0.8: 0.7 wins;
  * temperature 1 best: 1.0 wins, and a single candidate wins alone;
  * the best top_p with images too alike loses to the next eligible one,
    and no eligible candidate is an error.
Prints the usual closing line "N passed, N failed".
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models", "shapes"))
import ship  # noqa: E402


def sweep(rates, hamming=None):
    """{value: (generation, understanding)} -> the sweep dict ship.py writes ({value: images' hamming})."""
    out = {str(t): {"generation": {"single": {"score": g}}, "understanding": {"single": {"score": u}}}
           for t, (g, u) in rates.items()}
    for t, h in (hamming or {}).items():
        out[str(t)]["generation"]["diversity"] = {"hamming": h}
    return out


def main():
    results = []

    def check(ok, what, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": {detail}"))

    temps = [1.0, 0.9, 0.8, 0.7]
    measured = {1.0: (0.751, 0.967), 0.9: (0.771, 0.970), 0.8: (0.793, 0.974), 0.7: (0.797, 0.976)}
    best, mean = ship.choose(sweep(measured), temps)
    check(best == 0.8, "within 0.5 points of the best: the higher temperature", (best, mean))
    check(abs(mean[0.7] - 0.8865) < 1e-12, "the mean of the two one-sample rates", mean)
    ahead = {**measured, 0.7: (0.817, 0.976)}
    best, mean = ship.choose(sweep(ahead), temps)
    check(best == 0.7, "a full point ahead: the lower temperature", (best, mean))
    top = {**measured, 1.0: (0.80, 0.98)}
    best, _ = ship.choose(sweep(top), temps)
    check(best == 1.0, "temperature 1 best", best)
    best, _ = ship.choose(sweep({0.9: (0.5, 0.5)}), [0.9])
    check(best == 0.9, "one candidate", best)
    top_ps = [1.0, 0.9, 0.7]
    rates = {1.0: (0.79, 0.97), 0.9: (0.81, 0.97), 0.7: (0.84, 0.97)}
    best, _ = ship.choose(sweep(rates, {1.0: 0.86, 0.9: 0.7, 0.7: 0.4}), top_ps, 0.5)
    check(best == 0.9, "images too alike: out of the choice", best)
    best, _ = ship.choose(sweep(rates, {1.0: 0.86, 0.9: 0.7, 0.7: 0.6}), top_ps, 0.5)
    check(best == 0.7, "images apart enough: the best wins", best)
    try:
        ship.choose(sweep(rates, {1.0: 0.1, 0.9: 0.1, 0.7: 0.1}), top_ps, 0.5)
        check(False, "no eligible candidate: an error")
    except SystemExit:
        check(True, "no eligible candidate: an error")
    passed = sum(results)
    print(f"ship: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
