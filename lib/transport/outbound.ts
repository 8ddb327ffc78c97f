import PQueue from 'p-queue';
import { CallTimeoutError, WtdError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import type { HttpResponse, StreamReader } from './http-client.js';
import type { Link } from './link.js';

/** Requests in flight to one remote node at once; the rest wait their turn. */
export const REQUESTS_PER_LINK = 64;

/**
 * The requests this node sends to other nodes: at most
 * {@link REQUESTS_PER_LINK} in flight to one of them, and each within the
 * deadline its caller set when it made the call (time spent waiting for a
 * turn counts; a request whose deadline passed while it waited is not
 * sent). A link's queue exists only while it has work.
 */
export class Outbound {
  readonly #clock: WallClock;
  readonly #queues = new Map<string, PQueue>();

  constructor(clock: WallClock) {
    this.#clock = clock;
  }

  /**
   * PUTs `jws` (or what it makes, when it is a function: called as the
   * request leaves) to `path` over `link`, answered within `timeout` ms of
   * `startedAt` (when the call was made, on this node's wall clock). A
   * request whose deadline passes, or that is given up (`signal`), while it
   * waits for a turn is never sent: `ERR_CALL_TIMEOUT` or
   * `ERR_CALL_CANCELLED` (it did not run). Once sent, the link says what
   * happened. `call.stream` reads a streamed answer as it comes.
   */
  request(
    link: Link,
    path: string,
    jws: string | (() => Promise<string>),
    call: { startedAt: number; timeout: number; signal?: AbortSignal; stream?: StreamReader },
  ): Promise<HttpResponse> {
    const deadline = call.startedAt + call.timeout;
    const target = `${link.key}${path}`;
    const timeoutMs = (): number => deadline - this.#clock.now();
    const { signal } = call;
    if (signal?.aborted === true) return Promise.reject(cancelled(target));
    const queue = this.#queue(link);
    let given: Error | undefined;
    let started = false;
    const sent = queue.add(
      async () => {
        started = true;
        if (given !== undefined) throw given;
        if (timeoutMs() <= 0) throw new CallTimeoutError(target, call.timeout);
        // Sealed in a session only now, as it leaves: sequence numbers go out in about the order they were taken.
        const text = typeof jws === 'string' ? jws : await jws();
        const left = timeoutMs();
        if (left <= 0) throw new CallTimeoutError(target, call.timeout);
        return link.request(path, text, left, signal, call.stream);
      },
      { throwOnTimeout: true },
    );
    if (queue.pending <= REQUESTS_PER_LINK && queue.size === 0) return sent;
    // It waits for a turn: given up while it waits, it is never sent; once sent, the link's own
    // timeout and signal say what became of it.
    return new Promise<HttpResponse>((resolve, reject) => {
      const giveUp = (err: Error): void => {
        if (started) return;
        given = err;
        reject(err);
      };
      const timer = this.#clock.setTimer(
        () => giveUp(new CallTimeoutError(target, call.timeout)),
        Math.max(0, timeoutMs()),
      );
      const onAbort = (): void => giveUp(cancelled(target));
      signal?.addEventListener('abort', onAbort, { once: true });
      sent.then(
        (res) => {
          timer.cancel();
          signal?.removeEventListener('abort', onAbort);
          resolve(res);
        },
        (err: unknown) => {
          timer.cancel();
          signal?.removeEventListener('abort', onAbort);
          reject(err as Error);
        },
      );
    });
  }

  /** Resolves once every request sent has been answered or has failed. */
  async onIdle(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.onIdle()));
  }

  #queue(link: Link): PQueue {
    let queue = this.#queues.get(link.key);
    if (queue === undefined) {
      const created = new PQueue({ concurrency: REQUESTS_PER_LINK });
      created.on('idle', () => {
        if (this.#queues.get(link.key) === created) this.#queues.delete(link.key);
      });
      this.#queues.set(link.key, created);
      queue = created;
    }
    return queue;
  }

  /** How many links have requests in flight or waiting. */
  get size(): number {
    return this.#queues.size;
  }
}

function cancelled(target: string): WtdError {
  return new WtdError('ERR_CALL_CANCELLED', `the call to ${target} was given up before it was sent; it did not run`);
}
