#!/usr/bin/env python3
"""models/shapes/ship.py's temperature rule (the seventh study's, fixed in
experiments/dsr-shapes/README.md): the best mean of the two one-sample pass
rates wins, and a candidate within 0.5 points of the best loses to a higher
temperature.  Worked cases, no daemon:

  * means 85.9, 87.1, 88.4, 88.7 at 1.0, 0.9, 0.8, 0.7 (the sweep measured
    on dsr6): 0.8 (0.3 below the best, 0.7) wins;
  * 0.7 a full point ahead of 0.8: 0.7 wins;
  * temperature 1 best: 1.0 wins, and a single candidate wins alone.
Prints the usual closing line "N passed, N failed".
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models", "shapes"))
import ship  # noqa: E402


def sweep(rates):
    """{temperature: (generation, understanding)} -> the sweep dict ship.py writes."""
    return {str(t): {"generation": {"single": {"score": g}}, "understanding": {"single": {"score": u}}}
            for t, (g, u) in rates.items()}


def main():
    results = []

    def check(ok, what, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": {detail}"))

    temps = [1.0, 0.9, 0.8, 0.7]
    measured = {1.0: (0.751, 0.967), 0.9: (0.771, 0.970), 0.8: (0.793, 0.974), 0.7: (0.797, 0.976)}
    best, mean = ship.choose_temperature(sweep(measured), temps)
    check(best == 0.8, "within 0.5 points of the best: the higher temperature", (best, mean))
    check(abs(mean[0.7] - 0.8865) < 1e-12, "the mean of the two one-sample rates", mean)
    ahead = {**measured, 0.7: (0.817, 0.976)}
    best, mean = ship.choose_temperature(sweep(ahead), temps)
    check(best == 0.7, "a full point ahead: the lower temperature", (best, mean))
    top = {**measured, 1.0: (0.80, 0.98)}
    best, _ = ship.choose_temperature(sweep(top), temps)
    check(best == 1.0, "temperature 1 best", best)
    best, _ = ship.choose_temperature(sweep({0.9: (0.5, 0.5)}), [0.9])
    check(best == 0.9, "one candidate", best)
    passed = sum(results)
    print(f"ship: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
