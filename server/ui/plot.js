// A small SVG line chart for the training view: a few series of (x, y)
// points on shared axes, with a legend showing each series' last value and
// a hover readout of the nearest x.  Not a charting library: enough for
// loss/KL/reward curves over policy versions.

const NS = 'http://www.w3.org/2000/svg';
const W = 460, H = 216, M = {left: 56, right: 12, top: 12, bottom: 34};

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// About n round-numbered ticks covering [lo, hi].
export function ticks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

export function fmt(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

// series: [{name, color, points: [[x, y], ...]}]; points with y null are skipped.
// Returns a <figure> whose data-points attribute counts the points drawn.
export function lineChart({title, series, xLabel}) {
  const fig = document.createElement('figure');
  fig.className = 'chart';
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  fig.append(cap);
  const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title});
  fig.append(svg);
  const clean = series.map((s) => ({...s, points: s.points.filter((p) => p[1] !== null && Number.isFinite(p[1]))}));
  const all = clean.flatMap((s) => s.points);
  fig.dataset.points = String(all.length);
  if (!all.length) {
    svg.append(el('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty'}, 'no data yet'));
    return fig;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - (Math.abs(y0) || 1) * 0.1, y1 + (Math.abs(y1) || 1) * 0.1];
  const pad = (y1 - y0) * 0.06;
  [y0, y1] = [y0 - pad, y1 + pad];
  const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);

  const axes = el('g', {class: 'axes'});
  for (const v of ticks(y0, y1, 4)) {
    axes.append(el('line', {x1: M.left, x2: W - M.right, y1: sy(v), y2: sy(v), class: 'gridline'}));
    axes.append(el('text', {x: M.left - 6, y: sy(v) + 4, 'text-anchor': 'end'}, fmt(v)));
  }
  for (const v of ticks(x0, x1, 6).filter((v) => Number.isInteger(v))) {
    axes.append(el('text', {x: sx(v), y: H - M.bottom + 14, 'text-anchor': 'middle'}, String(v)));
  }
  axes.append(el('line', {x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: 'axis'}));
  axes.append(el('text', {x: (M.left + W - M.right) / 2, y: H - 3, 'text-anchor': 'middle', class: 'label'}, xLabel || ''));
  svg.append(axes);

  for (const s of clean) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => (i ? 'L' : 'M') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1)).join(' ');
    svg.append(el('path', {d, fill: 'none', stroke: s.color, 'stroke-width': 2}));
    if (s.points.length <= 60) {
      for (const p of s.points) svg.append(el('circle', {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color}));
    }
  }

  // hover: a vertical rule at the nearest x and each series' value there
  const rule = el('line', {y1: M.top, y2: H - M.bottom, class: 'rule', visibility: 'hidden'});
  const readout = el('text', {x: M.left + 4, y: M.top + 10, class: 'readout'});
  svg.append(rule, readout);
  const xs = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  svg.addEventListener('mousemove', (ev) => {
    const box = svg.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * W;
    const x = xs.reduce((best, v) => (Math.abs(sx(v) - px) < Math.abs(sx(best) - px) ? v : best), xs[0]);
    rule.setAttribute('x1', sx(x));
    rule.setAttribute('x2', sx(x));
    rule.setAttribute('visibility', 'visible');
    const vals = clean.map((s) => {
      const p = s.points.find((q) => q[0] === x);
      return p ? `${s.name} ${fmt(p[1])}` : null;
    }).filter(Boolean);
    readout.textContent = `${xLabel || 'x'} ${x}: ${vals.join(' · ')}`;
  });
  svg.addEventListener('mouseleave', () => {
    rule.setAttribute('visibility', 'hidden');
    readout.textContent = '';
  });

  const leg = document.createElement('div');
  leg.className = 'chart-legend';
  for (const s of clean) {
    const item = document.createElement('span');
    const sw = document.createElement('i');
    sw.style.background = s.color;
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    item.append(sw, `${s.name}: ${fmt(last)}`);
    leg.append(item);
  }
  fig.append(leg);
  return fig;
}
