// Small helpers shared by the tabs.

export const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
export const std = (xs) => {
  const m = mean(xs);
  return xs.length ? Math.sqrt(xs.reduce((a, b) => a + (b - m) * (b - m), 0) / xs.length) : NaN;
};

// An <input type=number>'s value as a number.
export const num = (input) => Number(input.value);

// Sets each input (id → GET /model key) to the model's served default
// until the user edits it; called again when the model changes.
export function followDefaults(model, fields) {
  for (const [id, key] of Object.entries(fields)) {
    const input = document.getElementById(id);
    if (!input.dataset.follows) {
      input.dataset.follows = '1';
      input.addEventListener('input', () => { input.dataset.edited = '1'; });
    }
    if (!input.dataset.edited && typeof model[key] === 'number') input.value = String(model[key]);
  }
}

// Runs task() with the button disabled and the status line counting the
// seconds; then shows task's summary, or the error (the API's message names
// the field).  Errors are shown, not thrown: the page stays usable.
export async function run(button, status, label, task) {
  button.disabled = true;
  status.className = 'status-line busy';
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1) + ' s';
  const tick = () => {
    status.textContent = `${label}… ${secs()}`;
  };
  tick();
  const timer = setInterval(tick, 500);
  try {
    const summary = await task();
    status.className = 'status-line done';
    status.textContent = `${summary} (${secs()})`;
  } catch (e) {
    status.className = 'status-line error';
    status.textContent = e.message;
  } finally {
    clearInterval(timer);
    button.disabled = false;
  }
}

export function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
