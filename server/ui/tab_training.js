// Training: GET /stats every few seconds while the tab is shown — the
// updates this daemon applied (loss, KL, clip fraction, grad norm) and the
// mean self-reward of the rollouts it served before each, per direction.
import {get} from './api.js';
import {fmt, lineChart} from './plot.js';
import {element} from './util.js';

const POLL_MS = 2000;
const COLORS = {und: '#2563eb', gen: '#db2777', loss: '#111827', kl: '#7c3aed', clip: '#ea580c', grad: '#059669'};

export function init(ctx) {
  const $ = (id) => document.getElementById(id);
  const status = $('train-status');
  let timer = null;
  let last = ''; // the last answer, to redraw only on change

  function summary(s) {
    const box = $('train-summary');
    const stat = (k, v) => {
      const d = element('div', 'stat');
      d.append(element('div', 'muted', k), element('div', 'big', v));
      return d;
    };
    const pend = (t) => (t.rollouts ? `${fmt(t.reward_mean)} (${t.rollouts})` : '–');
    box.replaceChildren(
      stat('policy version', String(s.policy_version)),
      stat('updates applied', `${s.updates_recorded}`),
      stat('R_U since last update', pend(s.since_last_update.und)),
      stat('R_G since last update', pend(s.since_last_update.gen)),
      stat('rollouts served', `${s.rollouts_total.und} und · ${s.rollouts_total.gen} gen`));
  }

  function charts(s) {
    const u = s.updates;
    const pts = (f) => u.map((x) => [x.policy_version, f(x)]);
    // rewards of the rollouts served at version v-1, i.e. those that fed update v
    const rew = (d) => u.filter((x) => x[d].rollouts > 0).map((x) => [x.policy_version - 1, x[d].reward_mean]);
    // and the current version's rollouts so far
    const cur = (d) => (s.since_last_update[d].rollouts ? [[s.policy_version, s.since_last_update[d].reward_mean]] : []);
    $('train-charts').replaceChildren(
      lineChart({title: 'Mean self-reward of the rollouts served', xLabel: 'policy version',
                 series: [{name: 'R_U (captions)', color: COLORS.und, points: [...rew('und'), ...cur('und')]},
                          {name: 'R_G (images)', color: COLORS.gen, points: [...rew('gen'), ...cur('gen')]}]}),
      lineChart({title: 'Loss', xLabel: 'policy version', series: [{name: 'loss', color: COLORS.loss, points: pts((x) => x.loss)}]}),
      lineChart({title: 'KL to the reference', xLabel: 'policy version', series: [{name: 'kl', color: COLORS.kl, points: pts((x) => x.kl)}]}),
      lineChart({title: 'Clip fraction', xLabel: 'policy version',
                 series: [{name: 'clip fraction', color: COLORS.clip, points: pts((x) => x.clip_fraction)}]}),
      lineChart({title: 'Gradient norm (before clipping)', xLabel: 'policy version',
                 series: [{name: 'grad norm', color: COLORS.grad, points: pts((x) => x.grad_norm)}]}));
  }

  function table(s) {
    const rows = s.updates.slice(-12).reverse();
    if (!rows.length) {
      $('train-table').replaceChildren(element('p', 'muted',
        'No updates yet. Train against this daemon, e.g. dsr-train --server ' + location.origin +
        ' --images DIR --prompts FILE, and the curves move.'));
      return;
    }
    const t = element('table', 'data');
    const head = element('tr');
    for (const h of ['version', 'time', 'algorithm', 'samples', 'loss', 'KL', 'clip', 'grad norm', 'tokens', 'R_U', 'R_G']) {
      head.append(element('th', '', h));
    }
    t.append(head);
    for (const x of rows) {
      const tr = element('tr');
      const cells = [x.policy_version, new Date(x.time * 1000).toLocaleTimeString(), x.algorithm, x.samples,
        fmt(x.loss), fmt(x.kl), fmt(x.clip_fraction), fmt(x.grad_norm), x.tokens,
        x.und.rollouts ? fmt(x.und.reward_mean) : '–', x.gen.rollouts ? fmt(x.gen.reward_mean) : '–'];
      for (const c of cells) tr.append(element('td', '', String(c)));
      t.append(tr);
    }
    $('train-table').replaceChildren(t);
  }

  async function poll() {
    try {
      const s = await get('/stats');
      ctx.seenVersion(s.policy_version);
      const key = JSON.stringify(s);
      if (key !== last) {
        last = key;
        summary(s);
        charts(s);
        table(s);
      }
      status.className = 'status-line done';
      status.textContent = `${s.updates.length} of the last ${s.capacity} updates kept · refreshed ` +
        new Date().toLocaleTimeString();
    } catch (e) {
      status.className = 'status-line error';
      status.textContent = e.message;
    }
  }

  return {
    show() {
      poll();
      timer = setInterval(() => document.visibilityState === 'visible' && poll(), POLL_MS);
    },
    hide() {
      clearInterval(timer);
      timer = null;
    },
  };
}
