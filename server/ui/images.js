// Images on the page: where they come from (a file, a generated rollout),
// how they go to the API ({"png": ...} or the rollout's exact {"codes": ...}),
// a drop zone to pick one, and the code log-prob heat-map.
import {legend, rgb, viridis} from './colors.js';
import {fmt} from './plot.js';

// {src: URL to show, payload: the API's image object, label, codes?}
export function fromRollout(r, label) {
  return {src: 'data:image/png;base64,' + r.png, payload: {codes: r.codes}, codes: r.codes, label};
}

export function fromFile(file) {
  return new Promise((resolve, reject) => {
    if (!/^image\/(png|jpeg)$/.test(file.type)) {
      reject(new Error(`${file.name}: not a PNG or JPEG image`));
      return;
    }
    const rd = new FileReader();
    rd.onload = () => {
      const url = String(rd.result);
      // either key takes either format (the server sniffs the bytes)
      resolve({src: url, payload: {png: url.slice(url.indexOf(',') + 1)}, label: file.name});
    };
    rd.onerror = () => reject(rd.error);
    rd.readAsDataURL(file);
  });
}

export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => reject(new Error('cannot decode the image'));
    im.src = src;
  });
}

// A drop zone in `box`: click or drop a PNG/JPEG.  onPick(image) is called
// with each new image; set(image) shows one chosen elsewhere.
export function dropZone(box, onPick) {
  box.classList.add('drop');
  box.tabIndex = 0;
  const preview = document.createElement('img');
  preview.alt = '';
  preview.className = 'pixelated';
  const hint = document.createElement('p');
  hint.className = 'muted';
  const input = document.createElement('input');
  input.type = 'file';
  input.accept = 'image/png,image/jpeg';
  input.hidden = true;
  const err = document.createElement('p');
  err.className = 'error';
  box.append(preview, hint, input, err);
  const set = (image) => {
    preview.src = image ? image.src : '';
    preview.hidden = !image;
    hint.textContent = image ? image.label + ' · click or drop to replace' : 'Drop a PNG or JPEG here, or click to pick one';
    err.textContent = '';
  };
  const take = async (file) => {
    try {
      const image = await fromFile(file);
      set(image);
      onPick(image);
    } catch (e) {
      err.textContent = e.message;
    }
  };
  box.addEventListener('click', (ev) => {
    if (ev.target !== input) input.click();
  });
  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') input.click();
  });
  input.addEventListener('change', () => input.files[0] && take(input.files[0]));
  box.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    box.classList.add('over');
  });
  box.addEventListener('dragleave', () => box.classList.remove('over'));
  box.addEventListener('drop', (ev) => {
    ev.preventDefault();
    box.classList.remove('over');
    if (ev.dataTransfer.files[0]) take(ev.dataTransfer.files[0]);
  });
  set(null);
  return {set};
}

// The image with each code's log-prob over its cell of the side×side grid
// (codes are row-major over the image).  Returns {element, draw} where the
// element holds the canvas, an opacity slider, a legend and a readout.
export async function heatMap(src, logprobs, {codes = null, size = 320, caption = 'code log-prob'} = {}) {
  const im = await loadImage(src);
  const side = Math.round(Math.sqrt(logprobs.length));
  const wrap = document.createElement('div');
  wrap.className = 'heat';
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  canvas.className = 'heat-canvas';
  const controls = document.createElement('div');
  controls.className = 'heat-controls';
  const slider = document.createElement('input');
  slider.type = 'range';
  slider.min = '0';
  slider.max = '100';
  slider.value = '45';
  slider.title = 'heat-map opacity';
  const label = document.createElement('label');
  label.className = 'check';
  label.append('overlay ', slider);
  const readout = document.createElement('div');
  readout.className = 'readout muted';
  const lo = Math.min(...logprobs), hi = Math.max(...logprobs);
  controls.append(label, legend(fmt(lo), fmt(hi), caption));
  wrap.append(canvas, controls, readout);
  const grid = side * side === logprobs.length;
  if (!grid) readout.textContent = `${logprobs.length} codes do not form a square grid: no overlay`;

  const g = canvas.getContext('2d');
  const draw = () => {
    g.imageSmoothingEnabled = false;
    g.fillStyle = '#fff';
    g.fillRect(0, 0, size, size);
    // letterboxed like the model's pad-to-square preprocessing
    const k = size / Math.max(im.naturalWidth, im.naturalHeight);
    const w = im.naturalWidth * k, h = im.naturalHeight * k;
    g.drawImage(im, (size - w) / 2, (size - h) / 2, w, h);
    if (!grid) return;
    const alpha = Number(slider.value) / 100;
    const cell = size / side;
    for (let i = 0; i < logprobs.length; i++) {
      const t = hi > lo ? (logprobs[i] - lo) / (hi - lo) : 0.5;
      g.fillStyle = rgb(viridis(t), alpha);
      g.fillRect((i % side) * cell, Math.floor(i / side) * cell, cell, cell);
    }
  };
  slider.addEventListener('input', draw);
  canvas.addEventListener('mousemove', (ev) => {
    if (!grid) return;
    const box = canvas.getBoundingClientRect();
    const c = Math.min(side - 1, Math.floor(((ev.clientX - box.left) / box.width) * side));
    const r = Math.min(side - 1, Math.floor(((ev.clientY - box.top) / box.height) * side));
    const i = r * side + c;
    readout.textContent = `cell (${r}, ${c})` + (codes ? ` · code ${codes[i]}` : '') +
      ` · log-prob ${fmt(logprobs[i])} · p ${fmt(Math.exp(logprobs[i]))}`;
  });
  canvas.addEventListener('mouseleave', () => {
    if (grid) readout.textContent = 'hover a cell for its code and log-prob';
  });
  if (grid) readout.textContent = 'hover a cell for its code and log-prob';
  draw();
  return {element: wrap, draw};
}
