import { RateLimitedError } from '../errors.js';
import PQueue from 'p-queue';

/** How many requests under one grant run user code at once; the rest wait their turn. */
export const EXECUTIONS_PER_GRANT = 8;

/**
 * How many requests of one grant may wait for a turn; more are refused with
 * `ERR_RATE_LIMITED`. With those running, as many as a caller keeps in
 * flight to one node (64): an honest caller at its most is never refused.
 */
export const WAITING_PER_GRANT = 56;

/**
 * Runs user code for requests, at most {@link EXECUTIONS_PER_GRANT} at a
 * time per grant. A grant's queue exists only while it has work: it is
 * dropped once idle, and at once when the grant is forgotten.
 */
export class Executions {
  readonly #queues = new Map<string, PQueue>();
  readonly #watchers = new Set<() => void>();
  #running = 0;
  #waiting = 0;

  /** Requests running user code now, and requests waiting for a turn, under every grant. */
  get load(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting };
  }

  /** Calls `fn` whenever a request starts waiting, starts running or ends; returns how to stop. */
  watch(fn: () => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  #changed(): void {
    for (const fn of this.#watchers) fn();
  }

  /**
   * Runs `work` under grant `kid` when a slot is free. `work` is told
   * whether the request waited for one: only then has the grant had time to
   * change, and need be read again.
   */
  run<T>(kid: string, work: (waited: boolean) => Promise<T>): Promise<T> {
    let queue = this.#queues.get(kid);
    if (queue === undefined) {
      const created = new PQueue({ concurrency: EXECUTIONS_PER_GRANT });
      created.on('idle', () => {
        if (this.#queues.get(kid) === created) this.#queues.delete(kid);
      });
      this.#queues.set(kid, created);
      queue = created;
    }
    // Work waiting for a turn holds its decoded arguments: past a bound the grantee is told to slow down.
    if (queue.size >= WAITING_PER_GRANT) return Promise.reject(new RateLimitedError(1));
    const waited = queue.pending >= EXECUTIONS_PER_GRANT || queue.size > 0;
    this.#waiting++;
    const done = queue.add(
      async () => {
        this.#waiting--;
        this.#running++;
        this.#changed();
        try {
          return await work(waited);
        } finally {
          this.#running--;
          this.#changed();
        }
      },
      { throwOnTimeout: true },
    );
    this.#changed();
    return done;
  }

  /** True when grant `kid` has as many requests waiting as it may: a new one would be refused. */
  full(kid: string): boolean {
    return (this.#queues.get(kid)?.size ?? 0) >= WAITING_PER_GRANT;
  }

  /** How many grants have work running or waiting. */
  get size(): number {
    return this.#queues.size;
  }

  /** Resolves once no request runs or waits under any grant. */
  async onIdle(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.onIdle()));
  }
}
