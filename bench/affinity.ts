/**
 * One core for the local rows: the runner (every thread: the event loop,
 * V8's collector threads, libuv's pool) is pinned with `taskset` to one
 * CPU, and the Erlang peer, started from it, inherits the pin. WTD, nact
 * and Erlang then each run on the same single core, collector included,
 * whatever the other cores do: a neighbour is moved by the kernel to
 * another core, or shares this one with both sides of a pair alike.
 * Unpinned, V8's helper threads use a second core, which a neighbour can
 * take from the Node sides and not from a one-scheduler Erlang, and the
 * ratios moved with the neighbour (see README, Performance).
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** CPUs of a `taskset -c` list ("0-3,6"). */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const [lo, hi = lo] = part.split('-').map(Number);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw new Error(`not a CPU list: ${JSON.stringify(list)}`);
    for (let c = lo!; c <= hi!; c++) cpus.push(c);
  }
  return cpus;
}

function cpusOf(pid: number): string {
  // "pid 4330's current affinity list: 0,1"
  const out = execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  return out.slice(out.lastIndexOf(':') + 1).trim();
}

function setCpus(pid: number, list: string): void {
  execFileSync('taskset', ['-a', '-c', '-p', list, String(pid)], { stdio: 'ignore' });
}

export interface Pin {
  /** The CPU every thread of this process runs on. */
  cpu: number;
  /** Gives every thread its CPUs back. */
  restore(): void;
}

/**
 * Pins every thread of this process to the last CPU it may use (the first
 * ones take most interrupts); undefined without `taskset` (not Linux, or no
 * util-linux) or with one CPU only. Children started afterwards inherit it.
 */
export function pinToOneCpu(): Pin | undefined {
  if (spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status !== 0) return undefined;
  const pid = process.pid;
  const before = cpusOf(pid);
  const cpus = parseCpuList(before);
  if (cpus.length < 2) return undefined;
  const cpu = cpus[cpus.length - 1]!;
  setCpus(pid, String(cpu));
  return { cpu, restore: () => setCpus(pid, before) };
}
