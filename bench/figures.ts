/** The workloads every runtime in the benchmark runs, and how their figures compare. */

/** Sizes of the workloads; `--quick` divides them by ten. */
export interface Sizes {
  oneway: number;
  pingpong: number;
  calls: number;
  spawn: number;
  skynet: number;
  ringSize: number;
  ringRounds: number;
}

export const FULL: Sizes = {
  oneway: 1_000_000,
  pingpong: 1_000_000,
  calls: 1_000_000,
  spawn: 100_000,
  skynet: 1_000_000,
  ringSize: 1000,
  ringRounds: 1000,
};

export function scaled(sizes: Sizes, factor: number): Sizes {
  const s = (n: number) => Math.max(1, Math.round(n * factor));
  // skynet needs a power of ten
  const sky = 10 ** Math.max(1, Math.round(Math.log10(sizes.skynet * factor)));
  return {
    oneway: s(sizes.oneway),
    pingpong: s(sizes.pingpong),
    calls: s(sizes.calls),
    spawn: s(sizes.spawn),
    skynet: sky,
    ringSize: sizes.ringSize,
    ringRounds: s(sizes.ringRounds),
  };
}

/** What a workload's figure means, and whether more is better. */
export interface Metric {
  name: string;
  unit: string;
  higherIsBetter: boolean;
  what: string;
  /** Over several runs, report the worst figure instead of the best (for guarantees such as a stall bound). */
  worstOfRuns?: boolean;
}

export const METRICS: Metric[] = [
  { name: 'oneway', unit: 'msg/s', higherIsBetter: true, what: 'one-way messages to one process' },
  {
    name: 'pingpong',
    unit: 'ns/round trip',
    higherIsBetter: false,
    what: 'ping-pong round trip between two processes',
  },
  { name: 'gen_server_call', unit: 'calls/s', higherIsBetter: true, what: 'sequential GenServer.call' },
  { name: 'spawn', unit: 'ns/process', higherIsBetter: false, what: 'spawning idle processes' },
  { name: 'process_memory', unit: 'bytes/process', higherIsBetter: false, what: 'heap per idle process' },
  { name: 'skynet', unit: 'ms', higherIsBetter: false, what: 'skynet (one process per leaf)' },
  { name: 'ring', unit: 'msg/s', higherIsBetter: true, what: 'messages around a ring' },
  {
    name: 'loop_stall',
    unit: 'ms',
    higherIsBetter: false,
    what: 'longest event-loop stall during the one-way flood',
    worstOfRuns: true,
  },
];

/** One runtime's figures, by metric name. */
export type Figures = Partial<Record<string, number>>;

/** One row of bench/results/latest.json. */
export interface Row {
  name: string;
  unit: string;
  value: number;
  peer: string;
  peerValue: number;
  /** How many times better WTD is than the peer: > 1 means ahead, whatever the unit. */
  ratio: number;
}

export function compare(wtd: Figures, peer: string, peerFigures: Figures): Row[] {
  const rows: Row[] = [];
  for (const m of METRICS) {
    const value = wtd[m.name];
    const peerValue = peerFigures[m.name];
    if (value === undefined || peerValue === undefined) continue;
    const ratio = m.higherIsBetter ? value / peerValue : peerValue / value;
    rows.push({ name: m.name, unit: m.unit, value, peer, peerValue, ratio });
  }
  return rows;
}

/** Runs `fn` while a 1 ms interval watches the event loop; returns the longest extra delay seen, in ms. */
export async function withStallMeter<T>(fn: () => Promise<T>): Promise<{ result: T; stall: number }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  try {
    const result = await fn();
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    return { result, stall: Math.max(0, worst) };
  } finally {
    clearInterval(timer);
  }
}

/** Collects garbage twice, when node runs with --expose-gc. */
export async function settleHeap(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run the benchmark with node --expose-gc (npm run bench does)');
  await new Promise((r) => setTimeout(r, 20));
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
