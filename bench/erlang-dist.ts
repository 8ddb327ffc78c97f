/**
 * The Erlang distribution peer of the remote rows: two local nodes
 * (`erl -sname`, epmd on loopback), one calling the other with
 * `rpc:call/4` (bench/erlang/wtd_bench_rpc.erl). Both nodes, and epmd if
 * this started it, are stopped by pid at the end.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { compileErlang, NO_SPIN } from './erlang-peer.js';
import { cpuMicrosOf, exitsWithin, Lines, start, stop } from './processes.js';

const EPMD_PORT = 4369;

/** Whether something listens on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** An epmd already running is used as it is; else one is started on loopback, to be stopped at the end. */
async function ensureEpmd(env: NodeJS.ProcessEnv): Promise<ChildProcess | undefined> {
  if (await listening(EPMD_PORT)) return undefined;
  const epmd = start('epmd', ['-address', '127.0.0.1'], { stdio: 'ignore', env });
  for (let i = 0; i < 100; i++) {
    if (await listening(EPMD_PORT)) return epmd;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop(epmd);
  throw new Error('epmd did not start listening on 127.0.0.1:4369 within 5 s');
}

export interface RpcFigures {
  c1: number;
  c64: number;
  p50: number;
  p99: number;
  /** CPU time of both nodes per call, in µs (undefined without /proc). */
  cpu: number | undefined;
}

export class ErlangDist {
  readonly name: string;
  readonly #caller: ChildProcess;
  readonly #callee: ChildProcess;
  readonly #epmd: ChildProcess | undefined;
  readonly #lines: Lines;
  readonly #build: { remove(): void };

  private constructor(
    name: string,
    nodes: { caller: ChildProcess; callee: ChildProcess; epmd: ChildProcess | undefined; lines: Lines },
    build: { remove(): void },
  ) {
    this.name = name;
    this.#caller = nodes.caller;
    this.#callee = nodes.callee;
    this.#epmd = nodes.epmd;
    this.#lines = nodes.lines;
    this.#build = build;
  }

  /** Starts both nodes (each with `schedulers` schedulers) and waits until the caller has reached the callee. */
  static async start(release: string, schedulers: number): Promise<ErlangDist> {
    const env = { ...process.env, ERL_EPMD_ADDRESS: '127.0.0.1' };
    const build = compileErlang();
    const epmd = await ensureEpmd(env).catch((err: unknown) => {
      build.remove();
      throw err;
    });
    const s = String(schedulers);
    const cookie = randomBytes(12).toString('hex');
    const common = (sname: string): string[] => [
      '+S',
      `${s}:${s}`,
      ...NO_SPIN,
      '-sname',
      sname,
      '-setcookie',
      cookie,
      '-start_epmd',
      'false',
      '-kernel',
      'inet_dist_use_interface',
      '{127,0,0,1}',
      '-noshell',
      '-pa',
      build.dir,
    ];
    const calleeName = `wtdbench_b${process.pid}@localhost`;
    const callee = start('erl', common(calleeName), { stdio: ['ignore', 'ignore', 'inherit'], env });
    const caller = start(
      'erl',
      [...common(`wtdbench_a${process.pid}@localhost`), '-run', 'wtd_bench_rpc', 'serve', calleeName],
      { stdio: ['pipe', 'pipe', 'inherit'], env },
    );
    const lines = new Lines('erlang distribution peer', caller);
    const dist = new ErlangDist(`erlang-otp-${release}-dist`, { caller, callee, epmd, lines }, build);
    try {
      const ready = await lines.next(30_000);
      if (ready !== 'ready') throw new Error(`erlang distribution peer: ${ready}`);
    } catch (err) {
      await dist.close();
      throw err;
    }
    return dist;
  }

  #cpu(): number | undefined {
    const a = cpuMicrosOf(this.#caller.pid!);
    const b = cpuMicrosOf(this.#callee.pid!);
    return a === undefined || b === undefined ? undefined : a + b;
  }

  /** `n` sequential calls, then `n` from 64 callers at once. */
  async rpc(n: number): Promise<RpcFigures> {
    const before = this.#cpu();
    this.#caller.stdin!.write(`rpc ${n}\n`);
    const figures = JSON.parse(await this.#lines.next(10 * 60_000)) as Omit<RpcFigures, 'cpu'>;
    const after = this.#cpu();
    const cpu = before === undefined || after === undefined ? undefined : (after - before) / (2 * n);
    return { ...figures, cpu };
  }

  async close(): Promise<void> {
    this.#caller.stdin!.end();
    if (!(await exitsWithin(this.#caller, 2000))) await stop(this.#caller);
    await stop(this.#callee);
    if (this.#epmd !== undefined) await stop(this.#epmd);
    this.#build.remove();
  }
}
