// Calls from the page to the dsrd that served it (same origin).
//
// With --api-key every route but /health needs "Authorization: Bearer KEY".
// The page learns that from a 401, asks for the key once (one dialog even
// when several calls are refused together), keeps it in sessionStorage (this
// tab only, gone when it closes) and retries.

const KEY = 'dsr.apiKey';
let asking = null; // the open dialog's promise, shared by concurrent callers

export class ApiError extends Error {
  constructor(status, body, text) {
    const e = body && body.error;
    super(e ? e.message + (e.param ? ' (' + e.param + ')' : '') : 'HTTP ' + status + ': ' + text.slice(0, 200));
    this.status = status;
    this.param = e ? e.param : null;
  }
}

export function hasKey() {
  return !!sessionStorage.getItem(KEY);
}

// Opens the key dialog; resolves once a key was entered.
export function askKey(message) {
  if (asking) return asking;
  const dialog = document.getElementById('key-dialog');
  const input = document.getElementById('key-input');
  document.getElementById('key-message').textContent = message;
  input.value = '';
  asking = new Promise((resolve) => {
    dialog.addEventListener('close', function done() {
      dialog.removeEventListener('close', done);
      if (input.value) sessionStorage.setItem(KEY, input.value);
      asking = null;
      resolve();
    });
  });
  dialog.showModal();
  input.focus();
  return asking;
}

// method, path, optional JSON body → the parsed JSON reply; ApiError on a
// non-2xx reply (after the key dialog, for a 401).
export async function call(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = 'Bearer ' + key;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch (_) {
      // not JSON: reported below with the text
    }
    if (r.status === 401 && attempt < 5) {
      await askKey(key ? 'The key was refused: ' + (json && json.error ? json.error.message : 'HTTP 401')
                       : 'This dsrd needs an API key (--api-key).');
      continue;
    }
    if (!r.ok) throw new ApiError(r.status, json, text);
    if (json === null) throw new ApiError(r.status, null, 'not JSON: ' + text);
    return json;
  }
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);

// Token id → its text alone (/detokenize with pieces), cached for the
// page's life; null for an id the tokenizer cannot decode.
const pieces = new Map();
export async function tokenTexts(ids) {
  const todo = [...new Set(ids)].filter((id) => !pieces.has(id));
  for (let i = 0; i < todo.length; i += 1024) {
    const part = todo.slice(i, i + 1024);
    const got = (await post('/detokenize', {tokens: part, pieces: true})).pieces;
    part.forEach((id, k) => pieces.set(id, got[k]));
  }
  return ids.map((id) => pieces.get(id));
}
