// Score: one image and one text → both dual self-rewards in one POST /score:
//   R_U of the text as a caption of the image (its codes' log-probs given
//   the text, shown as a heat-map over the image), and
//   R_G of the image as a drawing of the text (the text's token log-probs
//   given the image, coloured).
import {post} from './api.js';
import {dropZone, heatMap} from './images.js';
import {fmt} from './plot.js';
import {specialNames, tokenLegend, tokenSpans} from './tokens.js';
import {element, run} from './util.js';

export function init(ctx) {
  const $ = (id) => document.getElementById(id);
  const out = $('score-results'), status = $('score-status');
  let image = null;
  const zone = dropZone($('score-drop'), (im) => {
    image = im;
  });

  function card(title, value, explain) {
    const c = element('div', 'score-card');
    c.append(element('h3', '', title), element('div', 'big reward', fmt(value)), element('p', 'muted', explain));
    return c;
  }

  $('score-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    run($('score-run'), status, 'scoring', async () => {
      if (!image) throw new Error('Pick an image first (drop one, or send one from Generate).');
      const text = $('score-text').value;
      const res = await post('/score', {
        items: [{task: 'understanding', image: image.payload, response: {text}},
                {task: 'generation', prompt: {text}, image: image.payload}],
        token_logprobs: true,
      });
      const [u, g] = res.items;
      ctx.seenVersion(res.policy_version);
      const cu = card('R_U — the text as a caption of the image', u.reward,
        `mean log-prob of the image's ${u.count} codes when the model draws the text`);
      cu.append((await heatMap(image.src, u.logprobs, {codes: image.codes, size: 256,
        caption: 'log-prob of each code given the text'})).element);
      const cg = card('R_G — the image as a drawing of the text', g.reward,
        `mean log-prob of the text's ${g.count} tokens when the model describes the image`);
      // the scored target is tok(target_prefix + text) (GET /model's templates)
      const prefix = ctx.model ? ctx.model.templates.target_prefix : ' ';
      const ids = (await post('/tokenize', {text: prefix + text})).tokens;
      if (ids.length === g.logprobs.length) {
        const sp = specialNames(ctx.model);
        cg.append(tokenLegend(), await tokenSpans(ids, g.logprobs, sp));
      }
      out.replaceChildren(cu, cg);
      return `scored at policy version ${res.policy_version} · hover the heat-map or a token for details`;
    });
  });

  return {
    set(im, text) {
      image = im;
      zone.set(im);
      if (text !== undefined) $('score-text').value = text;
      out.replaceChildren();
      status.textContent = '';
    },
  };
}
