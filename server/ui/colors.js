// Colour scales for log-probabilities: one perceptual map (viridis: dark
// purple = unlikely, yellow = likely) for both the image heat-maps and the
// caption tokens, and a legend to read it.

const STOPS = [
  [68, 1, 84], [65, 68, 135], [42, 120, 142], [34, 168, 132], [122, 209, 81], [253, 231, 37],
];

// t in [0, 1] → [r, g, b].
export function viridis(t) {
  t = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const x = t * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
}

export const rgb = (c, alpha) => (alpha === undefined ? `rgb(${c[0]},${c[1]},${c[2]})` : `rgba(${c[0]},${c[1]},${c[2]},${alpha})`);

// Text colour readable on background c.
export const inkOn = (c) => (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? '#111' : '#fff');

// Token log-probs use one fixed scale, so captions compare with each other.
export const TOKEN_LP_MIN = -10;
export const tokenT = (lp) => 1 + Math.max(TOKEN_LP_MIN, lp) / -TOKEN_LP_MIN;

// A horizontal legend: a gradient bar between two labels.
export function legend(lo, hi, caption) {
  const box = document.createElement('div');
  box.className = 'legend';
  const bar = document.createElement('canvas');
  bar.width = 160;
  bar.height = 10;
  const g = bar.getContext('2d');
  for (let x = 0; x < bar.width; x++) {
    g.fillStyle = rgb(viridis(x / (bar.width - 1)));
    g.fillRect(x, 0, 1, bar.height);
  }
  const span = (text, cls) => {
    const s = document.createElement('span');
    s.textContent = text;
    if (cls) s.className = cls;
    return s;
  };
  box.append(span(caption, 'muted'), span(lo), bar, span(hi));
  return box;
}
