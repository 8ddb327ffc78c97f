/**
 * The local rows: for each workload, `pairs` times, WTD and a peer run it
 * back to back, taking turns at going first; each pair gives a ratio, and
 * a row reports their median and spread (bench/paired.ts).
 */
import { METRICS, WORKLOADS, type Figures, type Runtime, type Sizes } from './figures.js';
import { inTurn, pairedRow, type Row } from './paired.js';

export async function runLocal(wtd: Runtime, peers: Runtime[], sizes: Sizes, pairs: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const workload of WORKLOADS) {
    const t0 = performance.now();
    const runs = new Map<Runtime, { wtd: Figures; peer: Figures }[]>(peers.map((p) => [p, []]));
    for (let i = 0; i < pairs; i++) {
      for (const peer of peers) {
        const got = new Map<Runtime, Figures>();
        for (const r of inTurn(i, wtd, peer)) got.set(r, await r.run(workload, sizes));
        runs.get(peer)!.push({ wtd: got.get(wtd)!, peer: got.get(peer)! });
      }
    }
    const made: Row[] = [];
    for (const peer of peers) {
      for (const m of METRICS.filter((m) => m.workload === workload)) {
        const samples: { value: number; peerValue: number }[] = [];
        for (const r of runs.get(peer)!) {
          const value = r.wtd[m.name];
          const peerValue = r.peer[m.name];
          if (value !== undefined && peerValue !== undefined) samples.push({ value, peerValue });
        }
        // A peer without this figure (Erlang has no event loop to stall) has no row for it.
        if (samples.length < pairs) continue;
        made.push(pairedRow(m.name, m.unit, peer.name, m.higherIsBetter, samples, m.worstOfRuns === true));
      }
    }
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `  ${workload}: ${pairs} pair(s) each in ${seconds} s; ${made.map((r) => `${r.name} vs ${r.peer} ${r.ratio.toFixed(2)}x`).join(', ')}`,
    );
    rows.push(...made);
  }
  // As before: every row of one peer, then the next peer's.
  return peers.flatMap((p) => rows.filter((r) => r.peer === p.name));
}
