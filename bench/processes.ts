/**
 * The benchmark's child processes (proxy, idle node, Erlang nodes, epmd,
 * the hog): each is started here, remembered by pid, and stopped by pid,
 * also when the runner ends early; and the CPU time of one, from /proc.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

const running = new Set<ChildProcess>();

function killRunning(): void {
  for (const c of running) {
    try {
      process.kill(c.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
process.on('exit', killRunning);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killRunning();
    process.exit(130);
  });
}

/** Starts `command`; it is killed by pid when the runner exits, if it is still running then. */
export function start(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  return child;
}

/** Whether it ends by itself within `ms`. */
export function exitsWithin(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL if it has not ended within `graceMs`; resolves once it has ended. */
export async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Lines a child writes on stdout, one at a time, each within `timeoutMs` or the child's exit. */
export class Lines {
  readonly #waiting: ((line: string | Error) => void)[] = [];
  readonly #queued: string[] = [];
  #ended: Error | undefined;
  readonly #name: string;

  constructor(name: string, child: ChildProcess) {
    this.#name = name;
    let rest = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      rest += chunk;
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (line === '') continue;
        const w = this.#waiting.shift();
        if (w) w(line);
        else this.#queued.push(line);
      }
    });
    child.once('exit', (code, signal) => {
      this.#ended = new Error(`${name} exited (${signal ?? `code ${code}`})`);
      for (const w of this.#waiting.splice(0)) w(this.#ended);
    });
  }

  next(timeoutMs: number): Promise<string> {
    const queued = this.#queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(settle);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new Error(`${this.#name} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (line: string | Error): void => {
        clearTimeout(timer);
        if (line instanceof Error) reject(line);
        else resolve(line);
      };
      this.#waiting.push(settle);
    });
  }
}

/** /proc counts CPU time in ticks of 1/100 s (USER_HZ) on Linux. */
const TICKS_PER_SECOND = 100;

/** User + system CPU time a process has used, in µs (from /proc: Linux only; undefined elsewhere or once gone). */
export function cpuMicrosOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name (which may hold spaces), from the third: utime is the 14th, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** This process's user + system CPU time, in µs (every thread: the event loop, the thread pool, the collector). */
export function ownCpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
