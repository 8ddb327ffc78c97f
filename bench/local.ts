/**
 * The local rows: for each workload and each peer, WTD and the peer run it
 * back to back, taking turns at going first; each pair gives a ratio, and a
 * row reports their median and spread (bench/paired.ts).
 */
import { METRICS, WORKLOADS, type Figures, type Runtime, type Sizes, type Workload } from './figures.js';
import { inTurn, median, pairedRow, type Row, type Sample } from './paired.js';

/**
 * How many pairs: at least `min`; then more, up to `max`, while the pairs
 * of this workload and peer have taken less than `budgetMs`. Many short
 * pairs rather than a few long ones: a neighbour whose load changes
 * falls within more of the pairs whole (both sides alike), and the median
 * of many pairs leaves out the few it straddled.
 */
export interface PairCount {
  min: number;
  max: number;
  budgetMs: number;
  /**
   * Each side of a pair runs the workload again (up to 50 times) until it
   * has run this long, and gives the median of its runs: WTD's turn at a
   * workload Erlang runs in 30 ms would otherwise be over in a few time
   * slices, and one busy moment of a neighbour would make its figure.
   */
  sideMs: number;
}

/** Runs `workload` on `r` until `sideMs` have passed (at least once); the median of each figure. */
async function side(r: Runtime, workload: Workload, sizes: Sizes, sideMs: number): Promise<Figures> {
  const runs: Figures[] = [];
  const t0 = performance.now();
  do runs.push(await r.run(workload, sizes));
  while (runs.length < 50 && performance.now() - t0 < sideMs);
  const figures: Figures = {};
  for (const name of Object.keys(runs[0]!)) figures[name] = median(runs.map((f) => f[name]!));
  return figures;
}

/**
 * The rows. With `cpuTime` (the runtimes pinned to one core, bench/affinity.ts),
 * a time metric's pairs are of the CPU time each side had (`cpu:<name>`),
 * which on a core of its own is its wall time, and which another program's
 * share of the core does not change; each pair keeps the wall-time figures
 * beside (`wall`). Without it, or where a side has no CPU time, the wall time.
 */
export async function runLocal(
  wtd: Runtime,
  peers: Runtime[],
  sizes: Sizes,
  count: PairCount,
  cpuTime: boolean,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const workload of WORKLOADS) {
    const said: string[] = [];
    for (const peer of peers) {
      const t0 = performance.now();
      const runs: { wtd: Figures; peer: Figures }[] = [];
      while (runs.length < count.max && (runs.length < count.min || performance.now() - t0 < count.budgetMs)) {
        const got = new Map<Runtime, Figures>();
        for (const r of inTurn(runs.length, wtd, peer)) got.set(r, await side(r, workload, sizes, count.sideMs));
        runs.push({ wtd: got.get(wtd)!, peer: got.get(peer)! });
      }
      for (const m of METRICS.filter((m) => m.workload === workload)) {
        const cpu = `cpu:${m.name}`;
        const byCpu = cpuTime && runs.every((r) => r.wtd[cpu] !== undefined && r.peer[cpu] !== undefined);
        const samples: Sample[] = [];
        for (const r of runs) {
          const value = r.wtd[m.name];
          const peerValue = r.peer[m.name];
          if (value === undefined || peerValue === undefined) continue;
          samples.push(
            byCpu ? { value: r.wtd[cpu]!, peerValue: r.peer[cpu]!, wall: { value, peerValue } } : { value, peerValue },
          );
        }
        // A peer without this figure (Erlang has no event loop to stall) has no row for it.
        if (samples.length < runs.length) continue;
        const row = pairedRow(m.name, m.unit, peer.name, m.higherIsBetter, samples, m.worstOfRuns === true);
        if (byCpu) row.time = 'cpu';
        rows.push(row);
        said.push(`${m.name} vs ${peer.name} ${row.ratio.toFixed(2)}x (${runs.length} pairs)`);
      }
    }
    console.log(`  ${workload}: ${said.join(', ')}`);
  }
  // Every row of one peer, then the next peer's.
  return peers.flatMap((p) => rows.filter((r) => r.peer === p.name));
}
