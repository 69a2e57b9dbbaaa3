// The page: tabs by URL hash, the header's model/version line, and the
// hand-offs between tabs (a generated image to Describe or Score).
import {askKey, get, hasKey} from './api.js';
import * as describe from './tab_describe.js';
import * as generate from './tab_generate.js';
import * as model from './tab_model.js';
import * as score from './tab_score.js';
import * as training from './tab_training.js';

const TABS = ['generate', 'describe', 'score', 'training', 'model'];
const $ = (id) => document.getElementById(id);

const modelListeners = [];
const ctx = {
  model: null, // GET /model, once loaded
  onModel(fn) {
    modelListeners.push(fn);
    if (ctx.model) fn(ctx.model);
  },
  sendToDescribe(image) {
    tabs.describe.setImage(image);
    location.hash = '#describe';
  },
  sendToScore(image, text) {
    tabs.score.set(image, text);
    location.hash = '#score';
  },
  // a reply's policy_version: the header follows without waiting for /health
  seenVersion(v) {
    setVersion(v, true);
  },
};

const tabs = {
  generate: generate.init(ctx),
  describe: describe.init(ctx),
  score: score.init(ctx),
  training: training.init(ctx),
  model: {show: () => ctx.model && loadModel()}, // fresh policy_version each visit
};
let current = null;

function showTab() {
  const name = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'generate';
  if (name === current) return;
  if (current && tabs[current] && tabs[current].hide) tabs[current].hide();
  current = name;
  for (const t of TABS) {
    $('tab-' + t).hidden = t !== name;
    document.querySelector(`#tabs a[data-tab="${t}"]`).classList.toggle('active', t === name);
  }
  if (tabs[name] && tabs[name].show) tabs[name].show();
  document.title = `dsr · ${name}`;
}

async function loadModel() {
  try {
    const m = await get('/model');
    ctx.model = m;
    model.render(m);
    $('status-model').textContent = m.name;
    $('status-model').title = m.description;
    $('key-button').hidden = !hasKey();
    for (const fn of modelListeners) fn(m);
    setVersion(m.policy_version, true);
  } catch (e) {
    setVersion(null, false, e.message);
    setTimeout(loadModel, 3000); // loading (503) or unreachable: try again
  }
}

function setVersion(v, ok, why) {
  $('status-dot').className = 'dot ' + (ok ? 'ok' : 'bad');
  $('status-version').textContent = v === null ? '' : `policy v${v}`;
  if (!ok) $('status-model').textContent = why || 'unreachable';
}

// /health needs no key: the header stays live without one
async function heartbeat() {
  try {
    const r = await fetch('/health');
    const h = await r.json();
    if (r.ok) setVersion(h.policy_version, true);
    else setVersion(null, false, h.error ? h.error.message : 'HTTP ' + r.status);
    if (r.ok && ctx.model) $('status-model').textContent = h.model;
  } catch (_) {
    setVersion(null, false, 'dsrd is not reachable');
  }
}

$('key-button').addEventListener('click', () => askKey('Enter another API key for this dsrd.'));
window.addEventListener('hashchange', showTab);
showTab();
loadModel();
setInterval(heartbeat, 5000);
