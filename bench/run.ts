/**
 * `npm run bench`: WTD's local runtime against its peers, on the same
 * workloads, on this machine; remote calls; an idle node's footprint.
 * Prints a table and writes bench/results/latest.json.
 *
 * The machine may be shared, so runtimes take turns workload by workload
 * (WTD, peer, WTD, peer, …; who goes first alternates) and each row is the
 * median of the pairs' ratios, with their spread (bench/paired.ts).
 *
 * Flags:
 *   --quick               sizes / 10, 2 pairs, a 5 s idle (a smoke test; CI runs it)
 *   --local-only          only the local rows, sizes / 4 (with --quick: / 10), written to
 *                         bench/results/local-only.json (local-only-hog.json with --hog)
 *   --hog                 a child process keeps one core busy during the run (to show the
 *                         ratios hold with a neighbour; `npm run bench:compare` compares)
 *   --pairs N             exactly N pairs per workload and peer (default: at least 7, and more,
 *                         up to 41, while they take less than 15 s; --quick: 2). In a pair each
 *                         side runs the workload again until it has run 250 ms (not with --quick)
 *   --out FILE            where to write the JSON
 *   --erl-schedulers N    schedulers of each Erlang node (default 1, as WTD's one event loop)
 *   --no-pin              do not pin the local rows to one CPU (bench/affinity.ts; by default
 *                         WTD, nact and Erlang all run on the last CPU, with taskset, and their
 *                         time figures are the CPU time each had there: bench/local.ts); wall
 *                         times then
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinToOneCpu } from './affinity.js';
import { ErlangDist } from './erlang-dist.js';
import { erlangAvailable, erlangRelease, ErlangRuntime } from './erlang-peer.js';
import { FULL, METRICS, scaled, WORKLOADS, type Runtime } from './figures.js';
import { runIdle, type BudgetRow } from './idle.js';
import { runLocal, type PairCount } from './local.js';
import { NactRuntime } from './nact-peer.js';
import type { Row } from './paired.js';
import { start, stop } from './processes.js';
import { runFailover } from './failover.js';
import { runRemote } from './remote.js';
import { WtdRuntime } from './wtd.js';

const FLAGS = ['--quick', '--local-only', '--hog', '--pairs', '--out', '--erl-schedulers', '--no-pin'];
const WITH_VALUE = new Set(['--pairs', '--out', '--erl-schedulers']);

function parseFlags(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (!FLAGS.includes(flag)) {
      console.error(`npm run bench: unknown flag ${flag}; the flags are ${FLAGS.join(', ')}`);
      process.exit(2);
    }
    if (!WITH_VALUE.has(flag)) flags.set(flag, '');
    else if (i + 1 < argv.length) flags.set(flag, argv[++i]!);
    else {
      console.error(`npm run bench: ${flag} needs a value`);
      process.exit(2);
    }
  }
  return flags;
}

function positiveInteger(flags: Map<string, string>, flag: string, fallback: number): number {
  const raw = flags.get(flag);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`npm run bench: ${flag} takes a whole number ≥ 1, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const flags = parseFlags(process.argv.slice(2));
const quick = flags.has('--quick');
const localOnly = flags.has('--local-only');
const hog = flags.has('--hog');
const sizes = scaled(FULL, quick ? 0.1 : localOnly ? 0.25 : 1);
const pairsFlag = flags.has('--pairs') ? positiveInteger(flags, '--pairs', 1) : undefined;
const pairs: PairCount =
  pairsFlag !== undefined
    ? { min: pairsFlag, max: pairsFlag, budgetMs: 0, sideMs: quick ? 0 : 250 }
    : quick
      ? { min: 2, max: 2, budgetMs: 0, sideMs: 0 }
      : { min: 7, max: 41, budgetMs: 15_000, sideMs: 250 };
const erlSchedulers = positiveInteger(flags, '--erl-schedulers', 1);
const remoteCalls = quick ? 500 : 5000;
const idleSeconds = quick ? 5 : 60;
const results = join(dirname(fileURLToPath(import.meta.url)), '../../bench/results');
const out =
  flags.get('--out') !== undefined
    ? resolve(flags.get('--out')!)
    : join(results, localOnly ? `local-only${hog ? '-hog' : ''}.json` : 'latest.json');

function format(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(value < 10 ? 2 : 0);
}

const mode = [quick && 'quick: sizes / 10', localOnly && 'local rows only', hog && 'with a CPU hog']
  .filter(Boolean)
  .join(', ');
console.log(`WTD benchmark on Node ${process.version}${mode ? ` (${mode})` : ''}`);
console.log(
  'sizes:',
  JSON.stringify(sizes),
  pairs.min === pairs.max
    ? `pairs: ${pairs.min}`
    : `pairs: ${pairs.min} to ${pairs.max} (more while under ${pairs.budgetMs / 1000} s)`,
);

// The neighbour of the demonstration: one core busy for the whole run (an hour at most).
const hogChild = hog
  ? start(process.execPath, [new URL('./hog-process.js', import.meta.url).pathname, String(3_600_000)], {
      stdio: 'ignore',
    })
  : undefined;
if (hogChild) console.log(`a CPU hog (pid ${hogChild.pid}) keeps one core busy during the run`);

const erl = erlangAvailable();
const release = erl ? erlangRelease() : '';
if (!erl) console.log('erl is not on the PATH: the Erlang/OTP rows are skipped (apt-get install erlang-base)');

const rows: Row[] = [];
let idle: BudgetRow | undefined;
// After the hog has started (it must not inherit the pin) and before Erlang (which must).
const pin = flags.has('--no-pin') ? undefined : pinToOneCpu();
console.log(
  pin
    ? `the local rows run on CPU ${pin.cpu} only (every thread of WTD, nact and Erlang); their times are CPU times`
    : `the local rows are not pinned to one CPU (${flags.has('--no-pin') ? '--no-pin' : 'no taskset, or one CPU'}); their times are wall times`,
);
const wtd = new WtdRuntime();
const peers: Runtime[] = [new NactRuntime()];
try {
  if (erl) peers.push(ErlangRuntime.start(release, erlSchedulers));
  // Every runtime runs each workload once at a tenth of the size first, so
  // that the JITs have compiled the hot paths before anything is measured.
  console.log(`warming up ${[wtd, ...peers].map((r) => r.name).join(', ')}...`);
  for (const r of [wtd, ...peers]) for (const w of WORKLOADS) await r.run(w, scaled(sizes, 0.1));
  console.log(`local workloads, WTD and ${peers.map((p) => p.name).join(', ')} in turns:`);
  rows.push(...(await runLocal(wtd, peers, sizes, pairs, pin !== undefined)));
} finally {
  for (const r of [wtd, ...peers]) await r.close();
  pin?.restore();
}

if (!localOnly) {
  console.log(`remote calls over loopback (${remoteCalls} a kind, ${pairs.min} pairs)...`);
  const dist = erl ? await ErlangDist.start(release, erlSchedulers) : undefined;
  try {
    rows.push(...(await runRemote(remoteCalls, pairs.min, dist)));
  } finally {
    await dist?.close();
  }
  console.log('mission groups: three members in their own processes; one is killed (SIGKILL)...');
  rows.push(...(await runFailover(remoteCalls, pairs.min)));
  console.log(`a node joined to a proxy, idle for ${idleSeconds} s...`);
  idle = await runIdle(idleSeconds);
}
if (hogChild) await stop(hogChild);

console.log('');
const header = [
  'workload',
  'unit',
  'WTD',
  'peer',
  'peer value',
  'ratio (>1: WTD ahead)',
  'ratio q1–q3',
  'ratio min–max',
  'pairs',
];
const table = rows.map((r) => [
  r.name,
  r.unit,
  format(r.value),
  r.peer,
  format(r.peerValue),
  `${r.ratio.toFixed(2)}x`,
  `${r.ratioQuartiles.q1.toFixed(2)}–${r.ratioQuartiles.q3.toFixed(2)}`,
  `${r.ratioSpread.min.toFixed(2)}–${r.ratioSpread.max.toFixed(2)}`,
  String(r.pairs.length),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const t of table) console.log(line(t));
const unpaired = METRICS.filter((m) => !rows.some((r) => r.name === m.name));
for (const m of unpaired) console.log(`${m.name}: no peer measured it`);
if (idle) {
  const verdict = (ok: boolean) => (ok ? 'within' : 'OVER');
  console.log(
    `${idle.name}: ${idle.value.toFixed(1)} MB RSS (budget ≤ ${idle.budget} MB: ${verdict(idle.value <= idle.budget)}), ` +
      `${idle.cpuPercent.toFixed(2)} % of a core (budget ≤ ${idle.cpuBudget} %: ${verdict(idle.cpuPercent <= idle.cpuBudget)}) ` +
      `over ${idle.idleSeconds.toFixed(0)} s idle; peak RSS ${idle.peakRssMb.toFixed(1)} MB`,
  );
}

mkdirSync(dirname(out), { recursive: true });
const all: (Row | BudgetRow)[] = idle ? [...rows, idle] : rows;
writeFileSync(out, `${JSON.stringify(all, null, 2)}\n`);
console.log(
  `\nwrote ${out.startsWith(results) ? `bench/results${out.slice(results.length)}` : out} (${all.length} rows)`,
);
