/** The workloads every runtime in the benchmark runs, and what their figures mean. */

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

/**
 * One workload, run on its own so that the runtimes can take turns at it
 * (WTD, peer, WTD, peer, …): what a neighbour on the machine does then falls
 * on both sides of a pair. A workload gives one figure or more (`metrics`).
 */
export type Workload = 'oneway' | 'pingpong' | 'gen_server_call' | 'spawn' | 'skynet' | 'ring';

/** What a workload's figure means, and whether more is better. */
export interface Metric {
  name: string;
  unit: string;
  higherIsBetter: boolean;
  what: string;
  /** The workload that measures it. */
  workload: Workload;
  /** Report the worst figure of the runs instead of the median (for guarantees such as a stall bound). */
  worstOfRuns?: boolean;
}

export const METRICS: Metric[] = [
  { name: 'oneway', unit: 'msg/s', higherIsBetter: true, what: 'one-way messages to one process', workload: 'oneway' },
  {
    name: 'pingpong',
    unit: 'ns/round trip',
    higherIsBetter: false,
    what: 'ping-pong round trip between two processes',
    workload: 'pingpong',
  },
  {
    name: 'gen_server_call',
    unit: 'calls/s',
    higherIsBetter: true,
    what: 'sequential GenServer.call',
    workload: 'gen_server_call',
  },
  { name: 'spawn', unit: 'ns/process', higherIsBetter: false, what: 'spawning idle processes', workload: 'spawn' },
  {
    name: 'process_memory',
    unit: 'bytes/process',
    higherIsBetter: false,
    what: 'heap per idle process',
    workload: 'spawn',
  },
  { name: 'skynet', unit: 'ms', higherIsBetter: false, what: 'skynet (one process per leaf)', workload: 'skynet' },
  { name: 'ring', unit: 'msg/s', higherIsBetter: true, what: 'messages around a ring', workload: 'ring' },
  {
    name: 'loop_stall',
    unit: 'ms',
    higherIsBetter: false,
    what: 'longest event-loop stall during the one-way flood',
    workload: 'oneway',
    worstOfRuns: true,
  },
];

/** The workloads, in the order they run. */
export const WORKLOADS: Workload[] = ['spawn', 'oneway', 'pingpong', 'gen_server_call', 'skynet', 'ring'];

/** One runtime's figures, by metric name. */
export type Figures = Partial<Record<string, number>>;

/** A runtime that runs one workload at a time: WTD or one of its peers. */
export interface Runtime {
  /** How its rows name it (`nact`, `erlang-otp-25`). */
  readonly name: string;
  run(workload: Workload, sizes: Sizes): Promise<Figures>;
  close(): Promise<void>;
}

/** This process's CPU time (every thread: the event loop, V8's collector threads, libuv's pool), in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** How long a workload's measured stretch took, in ms: by the clock on the wall, and in CPU time. */
export interface Elapsed {
  wall: number;
  cpu: number;
}

/** A stopwatch started now: each call gives the wall and CPU time since. */
export function stopwatch(): () => Elapsed {
  const wall0 = performance.now();
  const cpu0 = cpuMs();
  return () => ({ wall: performance.now() - wall0, cpu: cpuMs() - cpu0 });
}

/** A figure from ms: how many of `n` a second. */
export const perSecond =
  (n: number) =>
  (ms: number): number =>
    n / (ms / 1000);

/** A figure from ms: ns for each of `n`. */
export const nsEach =
  (n: number) =>
  (ms: number): number =>
    (ms * 1e6) / n;

/**
 * The figures of a time metric from a measured stretch: `name` from its
 * wall time and `cpu:name` from its CPU time, each through `figure` (ms to
 * the metric's unit). On one core of its own, a runtime that never waits
 * (as in these workloads) has both alike; when another program shares the
 * core, the wall time grows by the share and the CPU time does not.
 */
export function timeFigures(name: string, t: Elapsed, figure: (ms: number) => number): Figures {
  return { [name]: figure(t.wall), [`cpu:${name}`]: figure(t.cpu) };
}

/**
 * Runs `fn` while a 1 ms interval watches the event loop; returns the
 * longest extra delay seen, in ms. A delay counts the CPU time this
 * process had in it (at most its wall time): the stall is the runtime's
 * own work that kept the timers waiting, its collector's included (the
 * benchmark pins every thread to one core, bench/affinity.ts), and not the
 * time the OS gave the core to another program meanwhile, which would
 * make a neighbour's time slice read as a stall of whichever side it hit.
 */
export async function withStallMeter<T>(fn: () => Promise<T>): Promise<{ result: T; stall: number }> {
  let last = performance.now();
  let lastCpu = cpuMs();
  let worst = 0;
  const gap = (): void => {
    const now = performance.now();
    const cpu = cpuMs();
    worst = Math.max(worst, Math.min(now - last, cpu - lastCpu) - 1);
    last = now;
    lastCpu = cpu;
  };
  const timer = setInterval(gap, 1);
  try {
    const result = await fn();
    gap();
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
