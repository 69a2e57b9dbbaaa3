// Generate: POST /rollout (generation, return_png, score) → the group as a
// grid, each image with its R_G, the best marked; a click opens the image's
// code log-prob heat-map and sends it on to Describe or Score.
import {post} from './api.js';
import {fromRollout, heatMap} from './images.js';
import {fmt} from './plot.js';
import {followDefaults, mean, num, run, std} from './util.js';

export function init(ctx) {
  const $ = (id) => document.getElementById(id);
  const form = $('gen-form'), grid = $('gen-grid'), detail = $('gen-detail'), status = $('gen-status');
  let group = null; // {prompt, rollouts, version}
  let selected = -1;

  // the model's served sampling (generation_config.json), unless edited
  ctx.onModel((m) => followDefaults(m, {'gen-cfg': 'default_cfg_scale', 'gen-temp': 'default_temperature',
                                        'gen-topk': 'default_top_k', 'gen-topp': 'default_top_p'}));

  function render() {
    grid.replaceChildren();
    if (!group) return;
    const best = group.rollouts.reduce((b, r, i) => (r.reward > group.rollouts[b].reward ? i : b), 0);
    const order = group.rollouts.map((_, i) => i);
    if ($('gen-sort').checked) order.sort((a, b) => group.rollouts[b].reward - group.rollouts[a].reward);
    const rank = [...order].sort((a, b) => group.rollouts[b].reward - group.rollouts[a].reward);
    for (const i of order) {
      const r = group.rollouts[i];
      const card = document.createElement('button');
      card.type = 'button';
      card.className = 'card gen-card' + (i === best ? ' best' : '') + (i === selected ? ' selected' : '');
      card.dataset.index = String(i);
      const img = document.createElement('img');
      img.src = 'data:image/png;base64,' + r.png;
      img.alt = `image ${i + 1}`;
      img.className = 'pixelated';
      const cap = document.createElement('div');
      cap.className = 'card-caption';
      const reward = document.createElement('span');
      reward.className = 'reward';
      reward.textContent = 'R_G ' + fmt(r.reward);
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = i === best ? '★ best' : '#' + (rank.indexOf(i) + 1);
      cap.append(reward, badge);
      card.append(img, cap);
      card.title = `image ${i + 1}: R_G ${r.reward} · mean code log-prob ${fmt(mean(r.logprobs))}`;
      card.addEventListener('click', () => select(i));
      grid.append(card);
    }
  }

  async function select(i) {
    selected = i;
    render();
    const r = group.rollouts[i];
    const image = fromRollout(r, `generated image ${i + 1} of “${group.prompt}”`);
    detail.hidden = false;
    detail.replaceChildren();
    const h = document.createElement('h3');
    h.textContent = `Image ${i + 1}: R_G ${fmt(r.reward)}`;
    const map = await heatMap(image.src, r.logprobs, {codes: r.codes, caption: 'log-prob of each sampled code'});
    const facts = document.createElement('dl');
    facts.className = 'facts';
    const fact = (k, v) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      facts.append(dt, dd);
    };
    fact('R_G (mean log-prob of the prompt given the image)', fmt(r.reward));
    fact('mean log-prob of its codes', fmt(mean(r.logprobs)));
    fact('codes', `${r.codes.length} (${Math.round(Math.sqrt(r.codes.length))}² grid)`);
    fact('rollout id', r.id);
    fact('policy version', String(group.version));
    const actions = document.createElement('div');
    actions.className = 'buttons';
    const toDescribe = document.createElement('button');
    toDescribe.type = 'button';
    toDescribe.id = 'gen-to-describe';
    toDescribe.textContent = 'Describe this image →';
    toDescribe.addEventListener('click', () => ctx.sendToDescribe(image));
    const toScore = document.createElement('button');
    toScore.type = 'button';
    toScore.id = 'gen-to-score';
    toScore.className = 'secondary';
    toScore.textContent = 'Score it →';
    toScore.addEventListener('click', () => ctx.sendToScore(image, group.prompt));
    const save = document.createElement('a');
    save.href = image.src;
    save.download = `dsr-${i + 1}.png`;
    save.textContent = 'Download PNG';
    actions.append(toDescribe, toScore, save);
    const side = document.createElement('div');
    side.append(facts, actions);
    const body = document.createElement('div');
    body.className = 'detail-body';
    body.append(map.element, side);
    detail.append(h, body);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const prompt = $('gen-prompt').value;
    const req = {task: 'generation', prompt: {text: prompt}, n: num($('gen-n')), cfg_scale: num($('gen-cfg')),
                 temperature: num($('gen-temp')), top_k: num($('gen-topk')), top_p: num($('gen-topp')), score: true,
                 return_png: true};
    if ($('gen-seed').value !== '') req.seed = num($('gen-seed'));
    run($('gen-run'), status, `sampling ${req.n} images`, async () => {
      const res = await post('/rollout', req);
      group = {prompt, rollouts: res.rollouts, version: res.policy_version};
      ctx.seenVersion(res.policy_version);
      selected = -1;
      detail.hidden = true;
      render();
      const rw = res.rollouts.map((r) => r.reward);
      return `${rw.length} images at policy version ${res.policy_version} · R_G mean ${fmt(mean(rw))}, ` +
        `std ${fmt(std(rw))}, best ${fmt(Math.max(...rw))} · click an image for its heat-map`;
    });
  });
  $('gen-sort').addEventListener('change', render);
}
