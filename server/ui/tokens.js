// Token-by-token view of a text with each token coloured by its log-prob
// (fixed scale, colors.js), the token strings from /detokenize.
import {tokenTexts} from './api.js';
import {TOKEN_LP_MIN, inkOn, legend, rgb, tokenT, viridis} from './colors.js';
import {fmt} from './plot.js';

export function tokenLegend() {
  return legend(String(TOKEN_LP_MIN), '0', 'token log-prob');
}

// GET /model's special_tokens ({eos: id, ...}) as a Map id → name.
export function specialNames(model) {
  return new Map(Object.entries(model ? model.special_tokens : {}).map(([name, id]) => [id, name]));
}

// Whitespace and control characters made visible; null (an id the
// tokenizer cannot show alone) as ⟨id⟩; a special token by its short name
// (⟨eos⟩: its text, e.g. <｜end▁of▁sentence｜>, is in the tooltip).
function shown(text, id, special) {
  if (special.has(id)) return `⟨${special.get(id)}⟩`;
  if (text === null || text === undefined) return `⟨${id}⟩`;
  if (/^ +$/.test(text)) return '␣'.repeat(text.length); // a token of spaces alone
  const s = text.replace(/\n/g, '↵').replace(/\t/g, '→').replace(/[\u0000-\u001f\u007f]/g,
    (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
  return s === '' ? '∅' : s;
}

// ids and their log-probs → a <span class="tokens"> of coloured tokens.
// special: Map of special ids → names (specialNames; shown framed).
export async function tokenSpans(ids, logprobs, special) {
  const texts = await tokenTexts(ids);
  const box = document.createElement('span');
  box.className = 'tokens';
  ids.forEach((id, i) => {
    const t = document.createElement('span');
    t.className = 'tok' + (special.has(id) ? ' special' : '');
    t.textContent = shown(texts[i], id, special);
    const c = viridis(tokenT(logprobs[i]));
    t.style.background = rgb(c);
    t.style.color = inkOn(c);
    const named = special.has(id) && texts[i] ? `${texts[i]} · ` : '';
    t.title = `${named}id ${id} · log-prob ${fmt(logprobs[i])} · p ${fmt(Math.exp(logprobs[i]))}`;
    box.append(t);
  });
  return box;
}
