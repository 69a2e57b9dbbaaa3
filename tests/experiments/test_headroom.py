#!/usr/bin/env python3
"""experiments/dsr-shapes/headroom.py's group statistics on hand-made groups
whose answers are worked out below (no daemon needed).

Each group is [(reward, passes the grader)]:
  g1: the highest reward passes, the lowest fails, 2 of 3 pass: mixed;
      pairs (pass, fail): (0.9 vs 0.1) and (0.5 vs 0.1): both ordered, AUC 1;
  g2: the highest reward fails, 1 of 2 passes: mixed; pair (0.2 vs 0.8): 0;
  g3: all fail: not mixed, no pairs; oracle 0;
  g4: a tie between a passing and a failing sample: pair counts 1/2.
diversity of two groups of sequences: [a, a, b] (2 of 3 distinct; pairs
differ at 0, 1 and 1 of 2 positions) and [c, c+d] (2 distinct; the longer
one's extra position counts as a difference: 1 of 3): distinct
(2/3 + 1) / 2, hamming (0 + 1/2 + 1/2 + 1/3) / 4.
Prints the usual closing line "N passed, N failed".
"""
import sys

from checks import check, finish
import headroom  # noqa: E402  (checks put experiments/dsr-shapes on the path)


def main():
    g1 = [(0.9, True), (0.5, True), (0.1, False)]
    g2 = [(0.8, False), (0.2, True)]
    g3 = [(0.3, False), (0.4, False)]
    g4 = [(0.5, True), (0.5, False)]
    per, auc, pairs = headroom.group_stats([g1, g2, g3, g4])
    check(per["single"] == [2 / 3, 0.5, 0.0, 0.5], "single: each group's pass rate", per["single"])
    check(per["best_by_reward"] == [1.0, 0.0, 0.0, 1.0], "best by reward (ties: the first)", per["best_by_reward"])
    check(per["worst_by_reward"] == [0.0, 1.0, 0.0, 1.0], "worst by reward (ties: the first)",
          per["worst_by_reward"])
    check(per["oracle"] == [1.0, 1.0, 0.0, 1.0], "oracle: any sample passes", per["oracle"])
    check(per["mixed_groups"] == [1.0, 1.0, 0.0, 1.0], "mixed groups", per["mixed_groups"])
    check(pairs == 4 and abs(auc - (1 + 1 + 0 + 0.5) / 4) < 1e-12, "pairwise AUC over mixed groups' pairs",
          (auc, pairs))
    s = headroom.summarise([g1, g2, g3, g4], ["position", "relation", "relation", "counting"])
    check(abs(s["relation"]["single"]["score"] - 0.25) < 1e-12 and s["relation"]["auc_pairs"] == 1,
          "per kind: relation holds g2 and g3", s["relation"])
    gain = s["overall"]["best_minus_single"]["score"]
    check(abs(gain - ((1 - 2 / 3) + (0 - 0.5) + 0 + (1 - 0.5)) / 4) < 1e-12, "best minus single", gain)
    d = headroom.diversity([[[1, 2], [1, 2], [1, 3]], [[4, 5], [4, 5, 6]]])
    check(abs(d["distinct"] - (2 / 3 + 1) / 2) < 1e-12 and abs(d["hamming"] - (0 + 0.5 + 0.5 + 1 / 3) / 4) < 1e-12,
          "diversity: distinct samples and differing positions", d)
    return finish("headroom")


if __name__ == "__main__":
    sys.exit(main())
