/**
 * The processes of one scenario (node, proxy, attacker), each started by
 * pid and stopped by pid; their output counted; their memory sampled from
 * /proc; the proxy's disk measured.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every child still running, so that the runner can stop them whatever happens to it. */
const running = new Set<Child>();

/** Kills every child still running (the runner's exit path: SIGKILL, by pid, synchronously). */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** One child process of the suite, reached over IPC. */
export class Child {
  readonly name: string;
  readonly pid: number;
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, (msg: Record<string, unknown>) => void>();
  #nextId = 0;
  #stopping = false;
  /** Set if it ended before the runner stopped it: its exit code or signal. */
  exitedEarly: string | undefined;
  exited: Promise<void>;
  /** Bytes and lines it wrote (stdout and stderr), and lines that are frames of a stack trace. */
  readonly output = { bytes: 0, lines: 0, stackLines: 0 };
  /** The end of what it wrote, for a report when it dies. */
  #tail = '';

  private constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.#proc = proc;
    this.pid = proc.pid!;
    running.add(this);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        running.delete(this);
        if (!this.#stopping) this.exitedEarly = signal !== null ? `signal ${signal}` : `exit ${code}`;
        for (const p of this.#pending.values())
          p.reject(new Error(`${name} exited (${this.exitedEarly ?? 'stopped'})`));
        this.#pending.clear();
        resolve();
      });
    });
    const count = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      this.output.bytes += chunk.length;
      this.output.lines += text.split('\n').length - 1;
      this.output.stackLines += (text.match(/^\s+at .+$/gm) ?? []).length;
      this.#tail = (this.#tail + text).slice(-4000);
    };
    proc.stdout!.on('data', count);
    proc.stderr!.on('data', count);
    proc.on('message', (raw) => {
      const msg = raw as Record<string, unknown>;
      if (typeof msg.re === 'number') {
        const p = this.#pending.get(msg.re);
        this.#pending.delete(msg.re);
        if (msg.error !== undefined) p?.reject(new Error(String(msg.error)));
        else p?.resolve(msg.value);
        return;
      }
      this.#handlers.get(String(msg.type))?.(msg);
    });
  }

  /** Starts `script` (a file of dist/bench/abuse) with `args`; resolves with its `ready` message. */
  static async start(
    name: string,
    script: string,
    args: string[],
    execArgv: string[] = [],
  ): Promise<{ child: Child; ready: Record<string, unknown> }> {
    const proc = fork(new URL(script, import.meta.url).pathname, args, {
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const child = new Child(name, proc);
    const ready = await Promise.race([
      child.next('ready'),
      child.exited.then(() => {
        throw new Error(`${name} exited before it was ready: ${child.exitedEarly}\n${child.tail}`);
      }),
    ]);
    return { child, ready };
  }

  get tail(): string {
    return this.#tail;
  }

  get alive(): boolean {
    return this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** The next message of `type` it sends. */
  next(type: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.#handlers.set(type, (msg) => {
        this.#handlers.delete(type);
        resolve(msg);
      });
    });
  }

  /** Calls `type` in the child and resolves with its answer. */
  request<T = unknown>(type: string, payload: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name} did not answer ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#proc.send({ id, type, ...payload });
    });
  }

  send(msg: Record<string, unknown>): void {
    if (this.alive) this.#proc.send(msg);
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    this.#stopping = true;
    try {
      process.kill(this.pid, signal);
    } catch {
      // gone already
    }
  }

  /** SIGTERM, then SIGKILL if it has not ended within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    this.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exited,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.kill('SIGKILL');
          resolve();
        }, graceMs);
      }),
    ]);
    clearTimeout(timer);
    await this.exited;
  }
}

/** Peak and current resident memory of a process, in MB, from /proc (undefined once it is gone). */
export function memoryOf(pid: number): { peakMb: number; rssMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { peakMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Samples the peak memory of some children five times a second. A child
 * past `ceilingMb` is killed (SIGKILL, by pid) before it takes the shared
 * machine down with it; that is noted, and the scenario fails on memory.
 */
export class MemorySampler {
  readonly peaks = new Map<Child, number>();
  readonly killedAtCeiling = new Set<Child>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly children: Child[],
    readonly ceilingMb: number,
  ) {
    this.#timer = setInterval(() => this.sample(), 200);
    this.sample();
  }

  sample(): void {
    for (const c of this.children) {
      const m = memoryOf(c.pid);
      if (m === undefined) continue;
      this.peaks.set(c, Math.max(this.peaks.get(c) ?? 0, m.peakMb));
      if (m.rssMb > this.ceilingMb && c.alive) {
        this.killedAtCeiling.add(c);
        c.kill('SIGKILL');
      }
    }
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

/** The proxy's store on disk: proxy.db and its write-ahead log, in bytes. */
export function proxyDisk(dataDir: string): number {
  let total = 0;
  for (const f of ['proxy.db', 'proxy.db-wal']) {
    try {
      total += statSync(join(dataDir, f)).size;
    } catch {
      // not there (yet)
    }
  }
  return total;
}
