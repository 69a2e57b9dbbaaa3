// Describe: an image (dropped, picked or sent from Generate) → POST /rollout
// (understanding, score) → n captions ranked by R_U, each token coloured by
// its log-prob under the policy.
import {post, tokenTexts} from './api.js';
import {dropZone} from './images.js';
import {fmt} from './plot.js';
import {specialNames, tokenLegend, tokenSpans} from './tokens.js';
import {element, followDefaults, mean, num, run, std} from './util.js';

export function init(ctx) {
  const $ = (id) => document.getElementById(id);
  const list = $('desc-captions'), status = $('desc-status');
  let image = null;
  const zone = dropZone($('desc-drop'), (im) => {
    image = im;
  });
  $('desc-legend').replaceChildren(tokenLegend());

  ctx.onModel((m) => {
    if (!$('desc-question').value) $('desc-question').value = m.templates.dual_question;
    followDefaults(m, {'desc-temp': 'default_temperature', 'desc-topk': 'default_top_k',
                       'desc-topp': 'default_top_p'});
  });

  async function caption(r, i, rank, best, special) {
    const li = element('li', 'caption' + (i === best ? ' best' : ''));
    li.dataset.index = String(i);
    const head = element('div', 'caption-head');
    head.append(element('span', 'reward', 'R_U ' + fmt(r.reward)),
      element('span', 'badge', i === best ? '★ best' : '#' + rank),
      element('span', 'muted', `${r.tokens.length} tokens · mean log-prob ${fmt(mean(r.logprobs))}`));
    const score = element('button', 'link', 'Score this caption →');
    score.type = 'button';
    score.addEventListener('click', () => ctx.sendToScore(image, r.text));
    head.append(score);
    li.append(head, await tokenSpans(r.tokens, r.logprobs, special));
    return li;
  }

  $('desc-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    run($('desc-run'), status, 'sampling captions', async () => {
      if (!image) throw new Error('Pick an image first (drop one, or send one from Generate).');
      const req = {task: 'understanding', image: image.payload, question: $('desc-question').value,
                   n: num($('desc-n')), max_tokens: num($('desc-max')), temperature: num($('desc-temp')),
                   top_k: num($('desc-topk')), top_p: num($('desc-topp')), score: true};
      if ($('desc-seed').value !== '') req.seed = num($('desc-seed'));
      const res = await post('/rollout', req);
      const rs = res.rollouts;
      ctx.seenVersion(res.policy_version);
      const order = rs.map((_, i) => i).sort((a, b) => rs[b].reward - rs[a].reward);
      await tokenTexts(rs.flatMap((r) => r.tokens)); // every token's text in one request
      const sp = specialNames(ctx.model);
      const items = await Promise.all(order.map((i, k) => caption(rs[i], i, k + 1, order[0], sp)));
      list.replaceChildren(...items);
      const rw = rs.map((r) => r.reward);
      return `${rs.length} captions at policy version ${res.policy_version} · R_U mean ${fmt(mean(rw))}, ` +
        `std ${fmt(std(rw))} · hover a token for its id and log-prob`;
    });
  });

  return {
    setImage(im) {
      image = im;
      zone.set(im);
      list.replaceChildren();
      status.textContent = '';
    },
  };
}
