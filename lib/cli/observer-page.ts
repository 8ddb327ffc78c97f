/** The observer's page: reads `/observer.json` every second and draws it. */
export function observerPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WTD observer</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
  h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  h2 { font-size: 1.1em; margin-top: 1.6em; }
  .summary { color: #555; }
  .plaintext { color: #b00020; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f4f4f4; }
  ul.tree, ul.tree ul { list-style: none; padding-left: 1.4em; }
  ul.tree { padding-left: 0; }
  .kind { color: #777; font-size: 0.9em; }
  .restarting, .stopped, .revoked, .expired { color: #b00020; }
  .active { color: #0a7d2c; }
  code { font-size: 0.9em; }
  .empty { color: #999; }
</style>
</head>
<body>
<h1>WTD observer</h1>
<div class="summary" id="summary">loading…</div>
<div class="plaintext" id="plaintext" hidden>encryption is off: this node's requests and answers travel in the clear, and a proxy can read them (for debugging only)</div>
<h2>Supervision tree</h2>
<ul class="tree" id="tree"></ul>
<h2>Processes</h2>
<table><thead><tr><th>Pid</th><th>Name</th><th>Status</th><th>Mailbox</th><th>Behaviour</th></tr></thead>
<tbody id="processes"></tbody></table>
<h2>Missions</h2>
<table><thead><tr><th>Mission</th><th>Functions</th><th>Behaviours</th></tr></thead>
<tbody id="missions"></tbody></table>
<h2>Grants</h2>
<table><thead><tr><th>Grant</th><th>Missions</th><th>Rate</th><th>Tokens left</th><th>Uses</th><th>Last use</th><th>Outbox</th><th>Dropped</th><th>State</th></tr></thead>
<tbody id="grants"></tbody></table>
<h2>Recent refusals</h2>
<table><thead><tr><th>When</th><th>From</th><th>Grant</th><th>Code</th><th>Status</th><th>Path</th><th>Why</th></tr></thead>
<tbody id="refusals"></tbody></table>
<script>
  const $ = (id) => document.getElementById(id);
  // As the wtd command prints times.
  const time = (ms) => ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : 'never';
  function row(body, cells, attrs) {
    const tr = document.createElement('tr');
    for (const [k, v] of Object.entries(attrs || {})) tr.dataset[k] = v;
    for (const c of cells) {
      const td = document.createElement('td');
      if (Array.isArray(c)) { td.textContent = c[0]; td.className = c[1]; } else td.textContent = c;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  function empty(body, n, text) {
    if (body.children.length === 0) row(body, [[text, 'empty']].concat(Array(n - 1).fill('')));
  }
  function branch(t) {
    const li = document.createElement('li');
    li.dataset.pid = t.pid;
    const label = document.createElement('span');
    label.textContent = (t.id || t.name || t.module || 'supervisor') + ' ' + (t.pid || '');
    const kind = document.createElement('span');
    kind.className = 'kind ' + t.kind;
    kind.textContent = ' ' + t.kind + (t.module ? ' · ' + t.module : '');
    li.append(label, kind);
    if (t.children.length) {
      const ul = document.createElement('ul');
      for (const c of t.children) ul.appendChild(branch(c));
      li.appendChild(ul);
    }
    return li;
  }
  async function refresh() {
    let s;
    try {
      s = await (await fetch('/observer.json', { cache: 'no-store' })).json();
    } catch (err) {
      $('summary').textContent = 'the node is not answering';
      return;
    }
    $('summary').textContent = 'node ' + s.node.name + (s.node.id ? ' (' + s.node.id + ')' : '') +
      (s.node.address ? ' · listening at ' + s.node.address : '') + (s.node.proxy ? ' · on proxy ' + s.node.proxy : '') +
      ' · ' + s.processes.length + ' processes · updated ' + time(s.at);
    $('plaintext').hidden = s.node.encryption !== false;
    $('tree').replaceChildren(...s.tree.map(branch));
    if (!s.tree.length) { const li = document.createElement('li'); li.className = 'empty'; li.textContent = 'no supervisors'; $('tree').appendChild(li); }
    const procs = $('processes'); procs.replaceChildren();
    for (const p of s.processes) row(procs, [p.pid, p.name || '', p.status, String(p.queue), p.module ? p.behaviour + ' · ' + p.module : (p.behaviour || '')], { pid: p.pid });
    empty(procs, 5, 'no processes');
    const ms = $('missions'); ms.replaceChildren();
    for (const [m, d] of Object.entries(s.missions)) row(ms, [m, d.functions.join(', '), d.behaviours.join(', ')]);
    empty(ms, 3, 'no missions loaded');
    const gs = $('grants'); gs.replaceChildren();
    for (const g of s.grants) row(gs, [(g.label ? g.label + ' ' : '') + g.kid.slice(0, 12), g.missions.join(', '), g.rate,
      g.tokens === null ? '' : String(g.tokens), String(g.uses), time(g.lastUsedAt),
      String(g.outbox.queued), String(g.outbox.dropped), [g.state, g.state]], { kid: g.kid });
    empty(gs, 9, 'no grants');
    const rs = $('refusals'); rs.replaceChildren();
    for (const r of s.refusals) row(rs, [time(r.at), r.source, r.grant || 'no grant of this node', r.code, String(r.status), r.path, r.message]);
    empty(rs, 7, 'none');
  }
  refresh();
  setInterval(refresh, 1000);
</script>
</body>
</html>
`;
}
