/** The same workloads on Erlang/OTP, when `erl` is on the PATH. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Figures, Sizes } from './figures.js';

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

export function runErlang(sizes: Sizes): Figures {
  const out = mkdtempSync(join(tmpdir(), 'wtd-bench-erl-'));
  try {
    const src = sourceDir();
    execFileSync('erlc', ['-o', out, join(src, 'wtd_bench.erl'), join(src, 'wtd_bench_server.erl')]);
    const args = [
      sizes.oneway,
      sizes.pingpong,
      sizes.calls,
      sizes.spawn,
      sizes.skynet,
      sizes.ringSize,
      sizes.ringRounds,
    ];
    const stdout = execFileSync(
      'erl',
      ['+P', '5000000', '-noshell', '-pa', out, '-run', 'wtd_bench', 'main', ...args.map(String)],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    const figures: Figures = {};
    for (const line of stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const { name, value } = JSON.parse(line) as { name: string; value: number };
      figures[name] = value;
    }
    return figures;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
