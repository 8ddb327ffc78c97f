/**
 * The same workloads on Erlang/OTP, when `erl` is on the PATH: one
 * long-lived `erl -noshell` that runs one workload per line it reads
 * (bench/erlang/wtd_bench.erl), so that it takes turns with WTD.
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Figures, Runtime, Sizes, Workload } from './figures.js';
import { exitsWithin, Lines, start, stop } from './processes.js';

/** bench/erlang, found from dist/bench or bench. */
function sourceDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, here.includes(`${join('dist', 'bench')}`) ? '../../bench/erlang' : 'erlang');
}

export function erlangAvailable(): boolean {
  return spawnSync('erl', ['-version'], { stdio: 'ignore' }).status === 0;
}

export function erlangRelease(): string {
  return execFileSync('erl', ['-noshell', '-eval', 'io:format("~s", [erlang:system_info(otp_release)]), halt().'], {
    encoding: 'utf8',
  }).trim();
}

/** Compiles bench/erlang into a temporary directory; `remove` deletes it. */
export function compileErlang(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wtd-bench-erl-'));
  const src = sourceDir();
  execFileSync('erlc', [
    '-o',
    dir,
    join(src, 'wtd_bench.erl'),
    join(src, 'wtd_bench_server.erl'),
    join(src, 'wtd_bench_rpc.erl'),
  ]);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Scheduler flags. Idle schedulers sleep at once instead of spinning (the
 * default spins a while after work runs out): between its turns `erl`
 * must leave the CPU to WTD, and CPU time must count work, not waiting.
 */
export const NO_SPIN = ['+sbwt', 'none', '+sbwtdcpu', 'none', '+sbwtdio', 'none'];

/** The longest one workload may take before the peer is given up. */
const WORKLOAD_TIMEOUT_MS = 10 * 60_000;

export class ErlangRuntime implements Runtime {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #lines: Lines;
  readonly #build: { remove(): void };

  private constructor(name: string, child: ChildProcess, build: { remove(): void }) {
    this.name = name;
    this.#child = child;
    this.#lines = new Lines(name, child);
    this.#build = build;
  }

  /**
   * `schedulers`: how many BEAM schedulers run the workloads. One by
   * default, as WTD's one event loop: each side then uses one core, and a
   * neighbour that takes a core slows both alike.
   */
  static start(release: string, schedulers: number): ErlangRuntime {
    const build = compileErlang();
    const s = String(schedulers);
    const child = start(
      'erl',
      ['+P', '5000000', '+S', `${s}:${s}`, ...NO_SPIN, '-noshell', '-pa', build.dir, '-s', 'wtd_bench', 'serve'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    return new ErlangRuntime(`erlang-otp-${release}`, child, build);
  }

  async run(workload: Workload, sizes: Sizes): Promise<Figures> {
    const args: Record<Workload, number[]> = {
      oneway: [sizes.oneway],
      pingpong: [sizes.pingpong],
      gen_server_call: [sizes.calls],
      spawn: [sizes.spawn],
      skynet: [sizes.skynet],
      ring: [sizes.ringSize, sizes.ringRounds],
    };
    this.#child.stdin!.write(`${workload} ${args[workload].join(' ')}\n`);
    return JSON.parse(await this.#lines.next(WORKLOAD_TIMEOUT_MS)) as Figures;
  }

  async close(): Promise<void> {
    // It halts when its stdin ends; stopped by pid if it does not.
    this.#child.stdin!.end();
    if (!(await exitsWithin(this.#child, 2000))) await stop(this.#child);
    this.#build.remove();
  }
}
