/** The same workloads on nact, the best-known actor library for Node.js. */
import nact from 'nact';
import {
  nsEach,
  perSecond,
  settleHeap,
  stopwatch,
  timeFigures,
  withStallMeter,
  type Elapsed,
  type Figures,
  type Runtime,
  type Sizes,
  type Workload,
} from './figures.js';

const { start, spawn, spawnStateless, dispatch, query, stop } = nact as any;

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// nact's anonymous actor names are random and collide past ~1e5 actors; name them ourselves.
let serial = 0;
const uniqueName = () => `a${++serial}`;

async function oneway(system: unknown, n: number): Promise<Elapsed> {
  const done = deferred();
  let got = 0;
  const rx = spawnStateless(
    system,
    () => {
      if (++got === n) done.resolve();
    },
    uniqueName(),
  );
  const elapsed = stopwatch();
  for (let i = 0; i < n; i++) {
    dispatch(rx, i);
    // Yield to the event loop as the WTD sender does.
    if ((i & 1023) === 1023) await new Promise((r) => setImmediate(r));
  }
  await done.promise;
  const t = elapsed();
  stop(rx);
  return t;
}

async function pingpong(system: unknown, n: number): Promise<Elapsed> {
  const done = deferred();
  const ponger = spawnStateless(system, (msg: { from: unknown }) => dispatch(msg.from, 'pong'), uniqueName());
  let left = n;
  const pinger = spawnStateless(
    system,
    (_msg: unknown, ctx: { self: unknown }) => {
      if (--left === 0) done.resolve();
      else dispatch(ponger, { from: ctx.self });
    },
    uniqueName(),
  );
  const elapsed = stopwatch();
  dispatch(ponger, { from: pinger });
  await done.promise;
  const t = elapsed();
  stop(ponger);
  stop(pinger);
  return t;
}

async function calls(system: unknown, n: number): Promise<Elapsed> {
  const server = spawn(
    system,
    (count: number = 0, msg: { sender: unknown; n: number }) => {
      dispatch(msg.sender, msg.n);
      return count + 1;
    },
    uniqueName(),
  );
  const elapsed = stopwatch();
  for (let i = 0; i < n; i++) await query(server, (sender: unknown) => ({ sender, n: i }), 5000);
  const t = elapsed();
  stop(server);
  return t;
}

async function spawnIdle(system: unknown, n: number): Promise<{ t: Elapsed; bytes: number }> {
  const before = await settleHeap();
  const elapsed = stopwatch();
  const actors: unknown[] = [];
  for (let i = 0; i < n; i++) actors.push(spawnStateless(system, () => undefined, uniqueName()));
  const t = elapsed();
  const after = await settleHeap();
  for (const a of actors) stop(a);
  await settleHeap();
  return { t, bytes: (after - before) / n };
}

async function skynet(system: unknown, leaves: number): Promise<Elapsed> {
  const done = deferred<number>();
  const root = spawnStateless(system, (sum: number) => done.resolve(sum), uniqueName());
  // Each node is an actor; told 'go', it spawns ten children under itself, or reports its number.
  const make = (parent: unknown, owner: unknown, num: number, size: number): unknown =>
    spawn(
      owner,
      (state: { sum: number; got: number } = { sum: 0, got: 0 }, msg: unknown, ctx: { self: unknown }) => {
        if (msg === 'go') {
          if (size === 1) {
            dispatch(parent, num);
            return state;
          }
          const s = size / 10;
          for (let i = 0; i < 10; i++) dispatch(make(ctx.self, ctx.self, num + i * s, s), 'go');
          return state;
        }
        const next = { sum: state.sum + (msg as number), got: state.got + 1 };
        if (next.got === 10) dispatch(parent, next.sum);
        return next;
      },
      uniqueName(),
    );
  const elapsed = stopwatch();
  const top = make(root, system, 0, leaves);
  dispatch(top, 'go');
  const sum = await done.promise;
  if (sum !== (leaves * (leaves - 1)) / 2) throw new Error(`nact skynet summed ${sum}`);
  const t = elapsed();
  stop(top);
  stop(root);
  return t;
}

async function ring(system: unknown, size: number, rounds: number): Promise<Elapsed> {
  const done = deferred();
  const head: { first?: unknown } = {};
  const main = spawnStateless(
    system,
    (k: number) => {
      if (k - 1 > 0) dispatch(head.first, k - 1);
      else done.resolve();
    },
    uniqueName(),
  );
  let next = main;
  const members: unknown[] = [];
  for (let i = 1; i < size; i++) {
    const to = next;
    next = spawnStateless(system, (m: number) => dispatch(to, m), uniqueName());
    members.push(next);
  }
  head.first = next;
  const elapsed = stopwatch();
  dispatch(head.first, rounds);
  await done.promise;
  const t = elapsed();
  for (const m of [main, ...members]) stop(m);
  return t;
}

/** nact, one actor system for every workload. */
export class NactRuntime implements Runtime {
  readonly name = 'nact';
  readonly #system: unknown = start();

  async run(workload: Workload, sizes: Sizes): Promise<Figures> {
    const system = this.#system;
    await settleHeap();
    switch (workload) {
      case 'spawn': {
        const memory = await spawnIdle(system, sizes.spawn);
        return { ...timeFigures('spawn', memory.t, nsEach(sizes.spawn)), process_memory: memory.bytes };
      }
      case 'oneway': {
        const flood = await withStallMeter(() => oneway(system, sizes.oneway));
        return { ...timeFigures('oneway', flood.result, perSecond(sizes.oneway)), loop_stall: flood.stall };
      }
      case 'pingpong':
        return timeFigures('pingpong', await pingpong(system, sizes.pingpong), nsEach(sizes.pingpong));
      case 'gen_server_call':
        return timeFigures('gen_server_call', await calls(system, sizes.calls), perSecond(sizes.calls));
      case 'skynet':
        return timeFigures('skynet', await skynet(system, sizes.skynet), (ms) => ms);
      case 'ring':
        return timeFigures(
          'ring',
          await ring(system, sizes.ringSize, sizes.ringRounds),
          perSecond(sizes.ringSize * sizes.ringRounds),
        );
    }
  }

  async close(): Promise<void> {
    stop(this.#system);
  }
}
