/** The workloads, on WTD. */
import { GenServer, Node, reply, type From, type Pid, type Process } from '../lib/index.js';
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

class Echo extends GenServer<number> {
  override handleCall(request: number, _from: From, calls: number) {
    return reply(request, calls + 1);
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** 1e6 messages from one process to another; the sender yields every 1024, as a good citizen of the event loop. */
async function oneway(node: Node, n: number): Promise<Elapsed> {
  const done = deferred();
  const rx = node.spawn(async (self) => {
    for (let i = 0; i < n; i++) await self.receive();
    done.resolve();
  });
  const elapsed = stopwatch();
  node.spawn(async (self) => {
    for (let i = 0; i < n; i++) {
      self.send(rx, i);
      if ((i & 1023) === 1023) await self.yield();
    }
  });
  await done.promise;
  return elapsed();
}

async function pingpong(node: Node, n: number): Promise<Elapsed> {
  const done = deferred();
  const ponger = node.spawn(async (self) => {
    for (;;) {
      const from = (await self.receive()) as Pid;
      self.send(from, 'pong');
    }
  });
  const elapsed = stopwatch();
  node.spawn(async (self) => {
    for (let i = 0; i < n; i++) {
      self.send(ponger, self.pid);
      await self.receive();
    }
    done.resolve();
  });
  await done.promise;
  const t = elapsed();
  node.exit(ponger, 'kill');
  return t;
}

async function calls(node: Node, n: number): Promise<Elapsed> {
  const pid = await GenServer.start(node, new Echo(), 0);
  const elapsed = stopwatch();
  for (let i = 0; i < n; i++) await GenServer.call(pid, i);
  const t = elapsed();
  await GenServer.stop(pid);
  return t;
}

/** An idle process: one shared body, blocked in receive (as Erlang's `fun() -> receive stop -> ok end end`). */
const idle = async (self: Process): Promise<void> => {
  await self.receive();
};

async function spawnIdle(node: Node, n: number): Promise<{ t: Elapsed; bytes: number }> {
  const before = await settleHeap();
  const started = deferred();
  const elapsed = stopwatch();
  const pids: Pid[] = [];
  for (let i = 0; i < n; i++) pids.push(node.spawn(idle));
  // The run queue is first-in first-out: when this one runs, every process above has reached its receive.
  node.spawn(async () => started.resolve());
  await started.promise;
  const t = elapsed();
  const after = await settleHeap();
  const bytes = (after - before) / n;
  const gone = node.exited(pids[pids.length - 1]!);
  for (const pid of pids) node.send(pid, 'stop');
  await gone;
  await settleHeap();
  return { t, bytes };
}

async function skynet(node: Node, leaves: number): Promise<Elapsed> {
  const sky =
    (parent: Pid, num: number, size: number) =>
    async (self: Process): Promise<void> => {
      if (size === 1) {
        self.send(parent, num);
        return;
      }
      const s = size / 10;
      for (let i = 0; i < 10; i++) self.spawn(sky(self.pid, num + i * s, s));
      let sum = 0;
      for (let i = 0; i < 10; i++) sum += (await self.receive()) as number;
      self.send(parent, sum);
    };
  const done = deferred<number>();
  const elapsed = stopwatch();
  node.spawn(async (self) => {
    self.spawn(sky(self.pid, 0, leaves));
    done.resolve((await self.receive()) as number);
  });
  const sum = await done.promise;
  const t = elapsed();
  if (sum !== (leaves * (leaves - 1)) / 2) throw new Error(`skynet summed ${sum}`);
  return t;
}

async function ring(node: Node, size: number, rounds: number): Promise<Elapsed> {
  const done = deferred();
  // Each member forwards what it gets to the next; the main member counts rounds down.
  let next: Pid | undefined;
  const members: Pid[] = [];
  const main = node.spawn(async (self) => {
    let k = (await self.receive()) as number;
    const first = members[members.length - 1]!;
    self.send(first, k);
    while (k > 0) {
      k = ((await self.receive()) as number) - 1;
      if (k > 0) self.send(first, k);
    }
    done.resolve();
  });
  next = main;
  for (let i = 1; i < size; i++) {
    const to: Pid = next;
    next = node.spawn(async (self) => {
      for (;;) {
        const m = await self.receive();
        if (m === 'stop') return;
        self.send(to, m);
      }
    });
    members.push(next);
  }
  const elapsed = stopwatch();
  node.send(main, rounds);
  await done.promise;
  const t = elapsed();
  for (const m of members) node.send(m, 'stop');
  return t;
}

/** WTD's runtime, one node for every workload. */
export class WtdRuntime implements Runtime {
  readonly name = 'wtd';
  readonly #node = new Node({ name: 'bench' });

  async run(workload: Workload, sizes: Sizes): Promise<Figures> {
    const node = this.#node;
    // What the previous run (of either runtime: they share this process) left is collected before this one.
    await settleHeap();
    switch (workload) {
      case 'spawn': {
        const memory = await spawnIdle(node, sizes.spawn);
        return { ...timeFigures('spawn', memory.t, nsEach(sizes.spawn)), process_memory: memory.bytes };
      }
      case 'oneway': {
        const flood = await withStallMeter(() => oneway(node, sizes.oneway));
        return { ...timeFigures('oneway', flood.result, perSecond(sizes.oneway)), loop_stall: flood.stall };
      }
      case 'pingpong':
        return timeFigures('pingpong', await pingpong(node, sizes.pingpong), nsEach(sizes.pingpong));
      case 'gen_server_call':
        return timeFigures('gen_server_call', await calls(node, sizes.calls), perSecond(sizes.calls));
      case 'skynet':
        return timeFigures('skynet', await skynet(node, sizes.skynet), (ms) => ms);
      case 'ring':
        return timeFigures(
          'ring',
          await ring(node, sizes.ringSize, sizes.ringRounds),
          perSecond(sizes.ringSize * sizes.ringRounds),
        );
    }
  }

  async close(): Promise<void> {}
}
