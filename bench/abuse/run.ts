/**
 * `npm run abuse`: the standing abuse suite (issue 10). Each scenario
 * attacks a real node and a real proxy, each in its own process, from
 * 127.0.0.2, while honest callers on 127.0.0.1 keep calling; then the
 * acceptance is checked: no crash, honest calls ≥ 95 % ok with p99 ≤ 1 s,
 * node ≤ 256 MB and proxy ≤ 512 MB peak RSS, the proxy's disk back within
 * 10 % once messages expired, abuse accepted only within the grant's rate.
 * Prints a table, writes bench/results/abuse.json, exits 1 if any scenario
 * misses it.
 *
 *   npm run abuse                  # the full sizes (minutes)
 *   npm run abuse -- --short       # the CI profile (under ~3 minutes)
 *   npm run abuse -- --only countdown,pid-flood
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GrantFile } from '../../lib/index.js';
import { Child, MemorySampler, killAll, proxyDisk } from './children.js';
import { Honest, type HonestStats } from './honest.js';
import { TEN_A_SECOND, sleep, type AttackReport, type Check, type Profile, type Scenario } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

/** The acceptance of issue 10, for every scenario. */
export const ACCEPTANCE = {
  honestOkRatio: 0.95,
  honestP99Ms: 1000,
  nodePeakMb: 256,
  proxyPeakMb: 512,
  diskGrowth: 0.1,
};
/** A child past this much RSS is killed before it hurts the shared machine (and fails on memory). */
const CEILING_MB = 2048;
/** How long the proxy's disk may take to come back once the messages expired (and the sweep after). */
const DISK_WAIT_MS = { short: 6000, full: 30_000 };
/** Alice's e-mail at the proxy (the second-e-mail scenario registers it again). */
const ALICE_EMAIL = 'alice@example.org';
/** The honest grant: not what limits the honest calls. */
const HONEST_RATE = { count: 1000, intervalMs: 1000, burst: 1000 };

interface Row {
  scenario: string;
  title: string;
  counts: string;
  abuse: { attempted: number; accepted: number; allowed: number | null };
  honest: HonestStats | null;
  nodePeakMb: number;
  proxyPeakMb: number;
  disk: { beforeBytes: number; afterBytes: number; judged: boolean };
  crashed: { node: string | null; proxy: string | null };
  checks: Check[];
  pass: boolean;
  seconds: number;
  detail: Record<string, unknown>;
  error?: string;
}

function options(): { profile: Profile; only: string[] | undefined } {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--only');
  const only = at >= 0 ? (argv[at + 1] ?? '').split(',').filter((s) => s !== '') : undefined;
  const unknown = only?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0) {
    console.error(`no such scenario: ${unknown.join(', ')}; there are ${SCENARIOS.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  return { profile: argv.includes('--short') ? 'short' : 'full', only };
}

/** One scenario on fresh processes; always stops them, by pid. */
async function runScenario(scenario: Scenario, profile: Profile): Promise<Row> {
  const t0 = Date.now();
  const caps = scenario.caps[profile];
  const tmp = mkdtempSync(join(tmpdir(), 'wtd-abuse-'));
  const proxyDir = join(tmp, 'proxy');
  const children: Child[] = [];
  let honest: Honest | undefined;
  let sampler: MemorySampler | undefined;
  let close: (() => Promise<void>) | undefined;
  const row: Row = {
    scenario: scenario.name,
    title: scenario.title,
    counts: scenario.counts,
    abuse: { attempted: 0, accepted: 0, allowed: null },
    honest: null,
    nodePeakMb: 0,
    proxyPeakMb: 0,
    disk: { beforeBytes: 0, afterBytes: 0, judged: scenario.disk === true },
    crashed: { node: null, proxy: null },
    checks: [],
    pass: false,
    seconds: 0,
    detail: {},
  };
  let proxy: Child | undefined;
  let node: Child | undefined;
  let attacking: ReturnType<typeof Child.start> | undefined;
  try {
    // Proxy and node start side by side; the node joins the proxy once both are up.
    const [ps, ns] = await Promise.allSettled([
      Child.start('proxy', './proxy-process.js', [proxyDir]),
      Child.start('node', './node-process.js', [join(tmp, 'node')], ['--expose-gc']),
    ]);
    for (const s of [ps, ns]) if (s.status === 'fulfilled') children.push(s.value.child);
    if (ps.status === 'rejected') throw ps.reason;
    if (ns.status === 'rejected') throw ns.reason;
    const [p, n] = [ps.value, ns.value];
    proxy = p.child;
    node = n.child;
    const proxyAt = { url: String(p.ready.url), id: String(p.ready.id) };
    const nodeAt = { url: String(n.ready.url), id: String(n.ready.id) };
    await node.request('join', { url: proxyAt.url, email: ALICE_EMAIL });
    sampler = new MemorySampler([node, proxy], CEILING_MB);

    const honestGrant = await node.request<GrantFile>('grant', {
      missions: ['greetings'],
      rate: HONEST_RATE,
      label: 'bob',
    });
    const rate = scenario.rate ?? TEN_A_SECOND;
    const grant = await node.request<GrantFile>('grant', { missions: ['greetings', 'inbox'], rate, label: 'mallory' });
    // The attacker's process starts while Bob sets up (it only waits for its orders).
    attacking = Child.start('attacker', './attacker-process.js', []);
    attacking.catch(() => undefined);
    honest = await Honest.start(nodeAt, proxyAt, honestGrant);
    if (scenario.disk === true) await honest.warm(1000);

    const env = {
      profile,
      caps,
      node: { ...nodeAt, child: node },
      proxy: { ...proxyAt, child: proxy, dataDir: proxyDir },
      honest,
      aliceEmail: ALICE_EMAIL,
    };
    const prepared = (await scenario.prepare?.(env)) ?? {};
    close = prepared.close;
    row.disk.beforeBytes = proxyDisk(proxyDir);

    const attacker = (await attacking).child;
    void attacker.next('started').then(() => honest!.begin());
    const outcome = Promise.race([
      attacker.next('report').then((m) => m.report as AttackReport),
      attacker.next('failed').then((m) => {
        throw new Error(`the attack failed: ${String(m.message)}`);
      }),
      attacker.exited.then(() => {
        throw new Error(`the attacker exited: ${attacker.exitedEarly}\n${attacker.tail}`);
      }),
      sleep(caps.timeMs + 60_000).then(() => {
        throw new Error(`the attack did not stop within its time cap and a minute`);
      }),
    ]);
    attacker.send({
      type: 'attack',
      name: scenario.name,
      env: {
        profile,
        caps,
        node: nodeAt,
        proxy: proxyAt,
        grant,
        rate,
        aliceEmail: ALICE_EMAIL,
        params: prepared.params ?? {},
      },
    });
    let report: AttackReport;
    try {
      report = await outcome;
    } finally {
      row.honest = await honest.stop();
      await attacker.stop();
    }
    row.abuse = { attempted: report.attempted, accepted: report.accepted, allowed: report.allowed };
    row.detail = { ...report.detail };
    const verdict = (await prepared.finish?.(report)) ?? {};
    if (verdict.accepted !== undefined) row.abuse.accepted = verdict.accepted;
    if (verdict.allowed !== undefined) row.abuse.allowed = verdict.allowed;
    Object.assign(row.detail, verdict.detail ?? {});
    row.checks.push(...(verdict.checks ?? []));

    if (scenario.disk === true) {
      const expiresAt = Number(report.detail.expiresAt ?? Date.now());
      await sleep(Math.max(0, expiresAt + 1500 - Date.now()));
      const limit = row.disk.beforeBytes * (1 + ACCEPTANCE.diskGrowth);
      const giveUp = Date.now() + DISK_WAIT_MS[profile];
      while (proxyDisk(proxyDir) > limit && Date.now() < giveUp && proxy.alive) await sleep(250);
    }
    row.disk.afterBytes = proxyDisk(proxyDir);
  } catch (err) {
    row.error = (err as Error).message;
  } finally {
    sampler?.stop();
    const peak = (c: Child | undefined): number =>
      Math.round((c === undefined ? 0 : (sampler?.peaks.get(c) ?? 0)) * 10) / 10;
    row.nodePeakMb = peak(node);
    row.proxyPeakMb = peak(proxy);
    row.crashed = {
      node: node === undefined ? null : crashOf(node, sampler),
      proxy: proxy === undefined ? null : crashOf(proxy, sampler),
    };
    if (node?.exitedEarly !== undefined) row.detail.nodeTail = node.tail.slice(-1500);
    if (proxy?.exitedEarly !== undefined) row.detail.proxyTail = proxy.tail.slice(-1500);
    await close?.().catch(() => undefined);
    await honest?.close().catch(() => undefined);
    const attacker = await attacking?.catch(() => undefined);
    if (attacker !== undefined) children.push(attacker.child);
    await Promise.all(children.map((c) => c.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
  row.checks = [...standardChecks(row, scenario), ...row.checks];
  row.pass = row.error === undefined && row.checks.every((c) => c.ok);
  row.seconds = (Date.now() - t0) / 1000;
  return row;
}

function crashOf(child: Child, sampler: MemorySampler | undefined): string | null {
  if (sampler?.killedAtCeiling.has(child)) return `killed at ${CEILING_MB} MB RSS`;
  return child.exitedEarly ?? null;
}

function standardChecks(row: Row, scenario: Scenario): Check[] {
  const h = row.honest;
  const checks: Check[] = [
    { name: 'no crash', ok: row.crashed.node === null && row.crashed.proxy === null },
    { name: 'honest ≥ 95 % ok', ok: h !== null && h.total > 0 && h.ok / h.total >= ACCEPTANCE.honestOkRatio },
    { name: 'honest p99 ≤ 1 s', ok: h !== null && h.total > 0 && h.p99Ms <= ACCEPTANCE.honestP99Ms },
    { name: 'node ≤ 256 MB', ok: row.nodePeakMb <= ACCEPTANCE.nodePeakMb },
    { name: 'proxy ≤ 512 MB', ok: row.proxyPeakMb <= ACCEPTANCE.proxyPeakMb },
  ];
  if (scenario.disk === true) {
    checks.push({
      name: 'disk back within 10 %',
      ok: row.disk.afterBytes <= row.disk.beforeBytes * (1 + ACCEPTANCE.diskGrowth),
    });
  }
  if (row.abuse.allowed !== null) {
    checks.push({
      name: row.abuse.allowed === 0 ? 'no abuse accepted' : 'abuse within the rate',
      ok: row.abuse.accepted <= row.abuse.allowed,
    });
  }
  return checks;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 0);

function print(rows: Row[]): void {
  const header = [
    'scenario',
    'abuse accepted',
    'honest ok',
    'p99 ms',
    'node MB',
    'proxy MB',
    'disk MB',
    'crashed',
    'result',
  ];
  const table = rows.map((r) => [
    r.scenario,
    `${r.abuse.accepted}${r.abuse.allowed === null ? '' : ` (≤ ${r.abuse.allowed})`}`,
    r.honest === null ? '-' : `${r.honest.ok}/${r.honest.total}`,
    r.honest === null ? '-' : r.honest.p99Ms.toFixed(0),
    r.nodePeakMb.toFixed(0),
    r.proxyPeakMb.toFixed(0),
    r.disk.judged
      ? `${mb(r.disk.beforeBytes)} → ${mb(r.disk.afterBytes)}`
      : `(${mb(r.disk.beforeBytes)} → ${mb(r.disk.afterBytes)})`,
    [r.crashed.node && `node: ${r.crashed.node}`, r.crashed.proxy && `proxy: ${r.crashed.proxy}`]
      .filter(Boolean)
      .join('; ') || 'no',
    r.pass
      ? 'ok'
      : `FAIL: ${[...(r.error === undefined ? [] : ['error']), ...r.checks.filter((c) => !c.ok).map((c) => c.name)].join(', ')}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const t of table) console.log(line(t));
  console.log('\ndisk in parentheses: shown, not judged (no messages of the attack expire there).');
  console.log('what "abuse accepted" counts (≤ n: the most allowed, by the grant\'s rate or by the rule):');
  for (const r of rows) console.log(`  ${r.scenario}: ${r.counts}`);
  for (const r of rows.filter((r) => r.error !== undefined)) console.log(`\n${r.scenario} failed to run: ${r.error}`);
}

const { profile, only } = options();
const selected = only === undefined ? SCENARIOS : SCENARIOS.filter((s) => only.includes(s.name));
// Whatever happens to the runner, its children end with it.
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

const began = Date.now();
console.log(`WTD abuse suite on Node ${process.version} (${profile} profile, ${selected.length} scenarios)`);
const rows: Row[] = [];
for (const scenario of selected) {
  process.stdout.write(`${scenario.name}: ${scenario.title}… `);
  const row = await runScenario(scenario, profile);
  rows.push(row);
  console.log(`${row.pass ? 'ok' : 'FAIL'} (${row.seconds.toFixed(1)} s)`);
}
console.log('');
print(rows);
const out = join(dirname(fileURLToPath(import.meta.url)), '../../../bench/results');
mkdirSync(out, { recursive: true });
const pass = rows.every((r) => r.pass);
writeFileSync(
  join(out, 'abuse.json'),
  `${JSON.stringify({ profile, node: process.version, seconds: (Date.now() - began) / 1000, pass, acceptance: ACCEPTANCE, rows }, null, 2)}\n`,
);
console.log(
  `\n${rows.filter((r) => r.pass).length}/${rows.length} scenarios meet the acceptance; wrote bench/results/abuse.json (${((Date.now() - began) / 1000).toFixed(0)} s)`,
);
process.exit(pass ? 0 : 1);
