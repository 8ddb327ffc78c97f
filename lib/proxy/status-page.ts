/**
 * The proxy's status page: one self-contained HTML document that reads
 * `/status.json` every second and shows the nodes online, what they offer,
 * their queues, when they were last seen and how much was relayed. It reads
 * one page of nodes at a time (`?limit=` in its own address sets how many,
 * default 100), online first, with buttons to the others.
 */
export function statusPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WTD proxy</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
  h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  .summary { color: #555; margin-bottom: 1em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.35em 0.7em; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f4f4f4; }
  .online { color: #0a7d2c; font-weight: 600; }
  .offline { color: #999; }
  .plaintext { color: #b00020; font-weight: 600; }
  tr.offline td { color: #999; }
  code { font-size: 0.9em; }
  .error { color: #b00020; }
  nav { margin: 0.8em 0; }
  nav[hidden] { display: none; }
  nav button { margin-right: 0.5em; }
</style>
</head>
<body>
<h1>WTD proxy</h1>
<div class="summary" id="summary">loading…</div>
<table>
  <thead><tr><th>Node</th><th>Status</th><th>Missions</th><th>Queued</th><th>Last seen</th><th>Sent</th><th>Received</th></tr></thead>
  <tbody id="nodes"></tbody>
</table>
<nav id="pager" hidden><button id="prev" type="button">previous</button><button id="next" type="button">next</button><span id="pages"></span></nav>
<script>
  const wanted = Number(new URLSearchParams(location.search).get('limit'));
  const limit = Number.isInteger(wanted) && wanted > 0 ? wanted : 100;
  let page = 1;
  document.getElementById('prev').onclick = () => { if (page > 1) { page--; refresh(); } };
  document.getElementById('next').onclick = () => { page++; refresh(); };
  const ago = (ms) => ms < 2000 ? 'just now' : ms < 120000 ? Math.round(ms / 1000) + ' s ago'
    : ms < 7200000 ? Math.round(ms / 60000) + ' min ago' : Math.round(ms / 3600000) + ' h ago';
  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  async function refresh() {
    try {
      const res = await fetch('/status.json?page=' + page + '&limit=' + limit, { cache: 'no-store' });
      const s = await res.json();
      page = s.page;
      document.getElementById('summary').textContent = s.online + ' of ' + s.total +
        ' registered nodes online · ' + s.relayed + ' messages relayed · proxy ' + s.id +
        ' · updated ' + new Date(s.now).toLocaleTimeString();
      document.getElementById('pager').hidden = s.pages <= 1;
      document.getElementById('pages').textContent = 'page ' + s.page + ' of ' + s.pages;
      document.getElementById('prev').disabled = s.page <= 1;
      document.getElementById('next').disabled = s.page >= s.pages;
      const body = document.getElementById('nodes');
      body.replaceChildren();
      // Online first, then by name: the proxy sorts, so that the pages follow on.
      for (const n of s.nodes) {
        const row = document.createElement('tr');
        row.className = n.online ? 'online-row' : 'offline';
        row.dataset.node = n.id;
        const who = cell(row, n.name + ' ');
        const id = document.createElement('code');
        id.textContent = n.id;
        who.appendChild(id);
        if (n.plaintext) {
          const warn = document.createElement('span');
          warn.className = 'plaintext';
          warn.textContent = ' encryption off: its messages are readable here';
          who.appendChild(warn);
        }
        cell(row, n.online ? 'online' : 'offline', n.online ? 'online status' : 'offline status');
        cell(row, n.missions.length ? n.missions.join(', ') : '—');
        cell(row, String(n.queued));
        cell(row, n.lastSeen ? ago(s.now - n.lastSeen) : 'never');
        cell(row, String(n.sent));
        cell(row, String(n.received));
        body.appendChild(row);
      }
    } catch (err) {
      document.getElementById('summary').innerHTML = '<span class="error">the proxy is not answering</span>';
    }
  }
  refresh();
  setInterval(refresh, 1000);
</script>
</body>
</html>
`;
}
