// Model: the GET /model summary — sizes, special ids, templates (with the
// contexts they build), weights — and the raw answer.
import {fmt} from './plot.js';
import {element} from './util.js';

const count = (n) => (n >= 1e6 ? (n / 1e6).toFixed(2) + ' M' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' k' : String(n));
// Template text with its newlines visible.
const literal = (s) => JSON.stringify(s);
const bytes = (n) => (n >= 2 ** 30 ? (n / 2 ** 30).toFixed(2) + ' GiB' : (n / 2 ** 20).toFixed(1) + ' MiB');

// How the weights are held and what /update trains (memory, lora).
function training_rows(m) {
  const mem = m.memory || {};
  const l = m.lora;
  const rows = [['weights held as', mem.weights_dtype], ['weights', bytes(mem.weights_bytes || 0)],
    ['optimizer state', mem.optimizer_bytes ? bytes(mem.optimizer_bytes) : 'none yet (allocated by the first /update)'],
    ['rollout KV cache', mem.kv_cache_dtype || 'float32']];
  if (!l) return rows.concat([['/update trains', 'every weight but the vision tower and VQ-VAE']]);
  return rows.concat([['/update trains', `LoRA adapters, rank ${l.rank}, alpha ${fmt(l.alpha)} (scale ${fmt(l.scale)})`],
    ['adapted projections', l.targets.join(', ')], ['adapter loaded', l.adapter || 'none (fresh: B = 0)']]);
}

function table(title, rows) {
  const sec = element('section', 'model-block');
  sec.append(element('h3', '', title));
  const t = element('table', 'kv');
  for (const [k, v] of rows) {
    const tr = element('tr');
    tr.append(element('th', '', k));
    const td = element('td');
    if (v instanceof Node) td.append(v);
    else td.textContent = String(v);
    tr.append(td);
    t.append(tr);
  }
  sec.append(t);
  return sec;
}

export function render(m) {
  const view = document.getElementById('model-view');
  const sp = m.special_tokens;
  const tp = m.templates;
  const code = (s) => element('code', '', s);
  const gen = `[BOS ${sp.bos}] ${literal(tp.user_prefix + '<prompt>' + tp.assistant_suffix)} [BOI ${sp.boi}]`;
  const und = `[BOS ${sp.bos}] ${literal(tp.user_prefix)} [BOI ${sp.boi}] [IMG ${sp.image}]×${m.num_image_tokens} ` +
    `[EOI ${sp.eoi}] ${literal(tp.question_prefix + '<question>' + tp.assistant_suffix)}`;
  const raw = element('details', 'raw');
  raw.append(element('summary', '', 'GET /model (raw)'), element('pre', '', JSON.stringify(m, null, 2)));
  const links = element('p', 'muted');
  const link = (href, text) => {
    const a = element('a', '', text);
    a.href = href;
    return a;
  };
  links.append('Also: ', link('/openapi.yaml', 'API contract (openapi.yaml)'), ' · ', link('/metrics', 'Prometheus metrics'));
  view.replaceChildren(
    table('Model', [['name', m.name], ['weights', m.description], ['policy version', m.policy_version]]),
    table('Parameters', [['total', count(m.parameters.total)], ['trainable', count(m.parameters.trainable)],
      ['frozen (vision tower, VQ-VAE, …)', count(m.parameters.frozen)]]),
    table('Memory and training', training_rows(m)),
    table('Language model', [['vocabulary', m.vocab_size], ['hidden size', m.text_config.hidden_size],
      ['layers', m.text_config.num_hidden_layers], ['attention heads', m.text_config.num_attention_heads],
      ['positions', m.text_config.max_position_embeddings], ['tokenizer', m.tokenizer]]),
    table('Images', [['seen at', `${m.image_size}×${m.image_size} px`], ['drawn at', `${m.vq_image_size}×${m.vq_image_size} px`],
      ['image tokens', `${m.num_image_tokens} (${fmt(Math.sqrt(m.num_image_tokens))}² grid)`],
      ['codebook', m.codebook_size], ['VQ quantizer', m.quantizer]]),
    table('Special token ids', Object.entries(sp)),
    table('Templates', [['user prefix', code(literal(tp.user_prefix))], ['assistant suffix', code(literal(tp.assistant_suffix))],
      ['question prefix', code(literal(tp.question_prefix))], ['target prefix (R_G)', code(literal(tp.target_prefix))],
      ['dual question (R_G)', code(literal(tp.dual_question))], ['gen_context(prompt)', code(gen)],
      ['und_context(image, question)', code(und)]]),
    links, raw);
}
