import type { Writable } from 'node:stream';
import { CallTimeoutError, MaybeRanError, WireError, WtdError } from '../errors.js';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import type { ReplyClaims } from '../wire/claims.js';
import { BATCH_MAX_BYTES, BATCH_MAX_ITEMS, type BatchResult } from './batch.js';

/**
 * Several calls in one request: calls to one node made while others are on
 * their way leave together, at the end of the turn, as `PUT /calls` (in a
 * session, straight to the node's address). The node checks and starts
 * each as it would on its own, in order, and streams the answers back as
 * they come: one sealed frame a turn with the results that turn finished,
 * so that a slow call holds back nobody else's.
 * @module
 */

/** The content type of a streamed answer: sealed frames, one a line. */
export const FRAMES_TYPE = 'application/wtd-frames';

/**
 * Most calls on their way on one connection at once, alone or several to a
 * request: what the node lets one grant run and queue (8 + 56).
 */
export const CALLS_IN_FLIGHT = 64;

/** One call of a `PUT /calls` request: what a call on its own carries in its claims. */
export interface CallItem {
  path: string;
  body: unknown;
  mission?: string;
  /** The caller's timeout, in ms (a behaviour's own call timeout is taken from it). */
  timeout: number;
  /** Epoch ms after which it is not started. */
  deadline: number;
}

/** What became of one call: the reply's body (status 200), or its refusal. */
export interface CallAnswer extends BatchResult {
  body?: ReplyClaims['body'];
  idempotent?: true;
}

/** What one frame carries: `[index of the call in the request, its answer]`, in the order they finished. */
export interface CallsFrame {
  results: [number, CallAnswer][];
}

function badCalls(message: string): WireError {
  return new WireError('ERR_BAD_ARGUMENTS', 400, message);
}

/** The calls of a `PUT /calls` body, `{ items: [...] }` (`ERR_BAD_ARGUMENTS` for another shape). */
export function parseCalls(body: unknown): CallItem[] {
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > BATCH_MAX_ITEMS) {
    throw badCalls(`PUT /calls carries { items: [...] }, 1 to ${BATCH_MAX_ITEMS} of them`);
  }
  for (const item of items as Partial<CallItem>[]) {
    if (
      item === null ||
      typeof item !== 'object' ||
      typeof item.path !== 'string' ||
      !(typeof item.timeout === 'number' && item.timeout > 0 && Number.isFinite(item.timeout)) ||
      !Number.isFinite(item.deadline) ||
      (item.mission !== undefined && typeof item.mission !== 'string')
    ) {
      throw badCalls('each call of PUT /calls carries { path, body, timeout, deadline } and may name its mission');
    }
  }
  return items as CallItem[];
}

/** What a call takes of a request's {@link BATCH_MAX_BYTES}: its JSON, in UTF-8. */
export function itemBytes(item: CallItem): number {
  return Buffer.byteLength(JSON.stringify(item));
}

/** A frame's results for a request of `n` calls, checked (`ERR_BAD_REPLY` for another shape). */
export function checkFrame(frame: unknown, n: number): [number, CallAnswer][] {
  const results = (frame as Partial<CallsFrame> | null)?.results;
  const ok =
    Array.isArray(results) &&
    results.length > 0 &&
    results.every(
      (r: unknown) =>
        Array.isArray(r) &&
        r.length === 2 &&
        Number.isInteger(r[0]) &&
        (r[0] as number) >= 0 &&
        (r[0] as number) < n &&
        r[1] !== null &&
        typeof r[1] === 'object' &&
        Number.isInteger((r[1] as CallAnswer).status),
    );
  if (!ok) throw new WireError('ERR_BAD_REPLY', 502, `a frame of the answer to ${n} calls carries no results for them`);
  return results as [number, CallAnswer][];
}

/**
 * The node's side: starts every call of a request (`start`, in order, each
 * resolving with its answer and never rejecting) and writes the answers to
 * `out` as they come, sealed by `seal` (frame `f`, from 0), one frame a
 * turn. Resolves with everything written, kept for a resend, once every
 * call was answered; `out` is ended then. A reader that went away is not
 * written to; the calls go on.
 */
export function streamCalls(
  items: readonly CallItem[],
  start: (item: CallItem, index: number) => Promise<CallAnswer>,
  seal: (f: number, frame: CallsFrame) => string,
  out: Writable,
): Promise<string> {
  return new Promise((resolve) => {
    const frames: string[] = [];
    let ready: [number, CallAnswer][] = [];
    let left = items.length;
    let flushing = false;
    const write = (text: string): void => {
      if (!out.destroyed && !out.writableEnded) out.write(text);
    };
    const flush = (): void => {
      flushing = false;
      if (ready.length > 0) {
        let text: string;
        try {
          text = `${seal(frames.length, { results: ready })}\n`;
        } catch {
          // Not expected (a frame is a small JSON value): should sealing fail, the caller reads an answer
          // cut short, and the calls it did not answer as may have run.
          left = 0;
          out.destroy();
          resolve(frames.join(''));
          return;
        }
        ready = [];
        frames.push(text);
        write(text);
      }
      if (left > 0) return;
      if (!out.destroyed && !out.writableEnded) out.end();
      resolve(frames.join(''));
    };
    items.forEach((item, i) => {
      void start(item, i).then((answer) => {
        if (left === 0) return;
        ready.push([i, answer]);
        left--;
        if (flushing) return;
        flushing = true;
        setImmediate(flush);
      });
    });
  });
}

/**
 * Reads a streamed answer as its bytes come: whole lines, each handed to
 * `frame` with its index, at most `maxBytes` in all (past them,
 * `ERR_BAD_REPLY`). What `frame` throws stops the reading; it is kept in
 * {@link failed}.
 */
export class FrameReader {
  readonly #frame: (f: number, text: string) => void;
  /** The bytes of the line not ended yet (each chunk is looked through once, whatever the line's length). */
  #partial: Buffer[] = [];
  #count = 0;
  #bytes = 0;
  readonly #maxBytes: number;
  failed: Error | undefined;

  constructor(frame: (f: number, text: string) => void, maxBytes: number) {
    this.#frame = frame;
    this.#maxBytes = maxBytes;
  }

  /** Takes the next bytes. */
  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes && this.failed === undefined) {
      this.failed = new WireError('ERR_BAD_REPLY', 502, `the answer holds more than ${this.#maxBytes} bytes`);
      this.#partial = [];
    }
    let start = 0;
    while (this.failed === undefined) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        if (start < chunk.length) this.#partial.push(chunk.subarray(start));
        return;
      }
      this.#partial.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.#partial).toString('latin1');
      this.#partial = [];
      start = nl + 1;
      try {
        this.#frame(this.#count++, line);
      } catch (err) {
        this.failed = err instanceof Error ? err : new Error(String(err));
      }
    }
    this.#partial = [];
  }

  /** True when the bytes ended in the middle of a line. */
  get cutOff(): boolean {
    return this.#partial.length > 0;
  }
}

/** What the client side needs: the clock, and how to send one request of calls. */
export interface CallBatcherDeps {
  clock: WallClock;
  /**
   * Sends `items` as one request, handing each frame's results to
   * `results` as they are read; resolves once the answer ended, rejects
   * when the request failed as a whole (every call it carried not yet
   * answered fails so). `signal` gives the request up.
   */
  send(
    items: CallItem[],
    results: (answers: [number, CallAnswer][]) => void,
    signal: AbortSignal,
    /** Called as the request leaves (sealed, once it had its turn): from then on its calls may run. */
    leaving: () => void,
  ): Promise<void>;
  /** Names the target in errors: the node's address and `path`. */
  target(path: string): string;
  /** How many calls are on their way alone meanwhile: they count against {@link CALLS_IN_FLIGHT}. */
  alone(): number;
}

interface Pending {
  item: CallItem;
  bytes: number;
  /** Waiting for a request; in one that has not left yet (not sent: it did not run); sent; settled. */
  state: 'queued' | 'leaving' | 'sent' | 'settled';
  resolve: (answer: CallAnswer) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  request?: Sent;
}

interface Sent {
  calls: Pending[];
  left: number;
  abort: AbortController;
}

/**
 * The caller's side: calls wait for the end of the turn and leave
 * together, at most {@link BATCH_MAX_ITEMS} (and {@link BATCH_MAX_BYTES})
 * a request, at most {@link CALLS_IN_FLIGHT} on their way at once with the
 * calls that went alone (the rest wait their turn, within their deadline;
 * {@link wake} says a lone one ended). Each call has its own deadline:
 * `ERR_CALL_TIMEOUT` until its request left (it did not run),
 * `ERR_MAYBE_RAN` after; given up with its `signal`, `ERR_CALL_CANCELLED`
 * or `ERR_MAYBE_RAN` the same way.
 */
export class CallBatcher {
  readonly #deps: CallBatcherDeps;
  #queue: Pending[] = [];
  readonly #open = new Set<Pending>();
  #sent = 0;
  #scheduled = false;
  #closed = false;
  #timer: ClockTimer | undefined;
  #timerAt = Infinity;

  constructor(deps: CallBatcherDeps) {
    this.#deps = deps;
  }

  /** Calls waiting or on their way. */
  get size(): number {
    return this.#open.size;
  }

  /** Queues a call (`bytes`: its {@link itemBytes}) for the next request; resolves with its answer. */
  add(item: CallItem, bytes: number, signal?: AbortSignal): Promise<CallAnswer> {
    if (this.#closed) return Promise.reject(new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed'));
    if (signal?.aborted === true) return Promise.reject(cancelled(this.#deps.target(item.path)));
    return new Promise<CallAnswer>((resolve, reject) => {
      const p: Pending = {
        item,
        bytes,
        state: 'queued',
        resolve,
        reject,
      };
      if (signal !== undefined) {
        p.signal = signal;
        p.onAbort = () => this.#givenUp(p);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#queue.push(p);
      this.#open.add(p);
      this.#arm(item.deadline);
      this.#schedule();
    });
  }

  /**
   * Says a call that went alone ended: its room may take a waiting one.
   * While calls of this batcher are on their way, the next of them to end
   * sends what waits (rather than one call now in a request of its own).
   */
  wake(): void {
    if (this.#sent === 0) this.#schedule();
  }

  /** Fails every call still waiting to leave (it did not run): nothing more is sent. Those on their way are answered. */
  close(): void {
    this.#closed = true;
    const left = this.#queue;
    this.#queue = [];
    for (const p of left) this.#settle(p, new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed'));
  }

  /** How many more calls may leave now. */
  #room(): number {
    return CALLS_IN_FLIGHT - this.#sent - this.#deps.alone();
  }

  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0 || this.#room() <= 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#queue.length > 0 && this.#room() > 0 && !this.#closed) {
      const room = Math.min(BATCH_MAX_ITEMS, this.#room());
      let n = 0;
      let bytes = 0;
      while (n < this.#queue.length && n < room) {
        const b = this.#queue[n]!.bytes;
        if (n > 0 && bytes + b > BATCH_MAX_BYTES) break;
        bytes += b;
        n++;
      }
      const calls = this.#queue.splice(0, n);
      const request: Sent = { calls, left: calls.length, abort: new AbortController() };
      for (const p of calls) {
        p.state = 'leaving';
        p.request = request;
      }
      this.#sent += calls.length;
      this.#deps
        .send(
          calls.map((p) => p.item),
          (answers) => {
            for (const [i, answer] of answers) {
              const p = calls[i];
              if (p !== undefined && p.state === 'sent') this.#settle(p, answer);
            }
          },
          request.abort.signal,
          () => {
            for (const p of calls) if (p.state === 'leaving') p.state = 'sent';
          },
        )
        .then(
          () => this.#failRest(request, new WireError('ERR_BAD_REPLY', 502, 'the answer ended without every result')),
          (err: unknown) => this.#failRest(request, err as Error),
        );
    }
  }

  #failRest(request: Sent, err: Error): void {
    for (const p of request.calls) if (p.state === 'sent' || p.state === 'leaving') this.#settle(p, err);
  }

  /** Settles `p` with its answer or error; a request whose every call is given up is given up too. */
  #settle(p: Pending, outcome: CallAnswer | Error): void {
    if (p.state === 'settled') return;
    const wasSent = p.state === 'sent' || p.state === 'leaving';
    p.state = 'settled';
    this.#open.delete(p);
    if (p.onAbort !== undefined) p.signal!.removeEventListener('abort', p.onAbort);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
    if (this.#open.size === 0) {
      // Nothing left to time out: no timer keeps the program alive.
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    if (!wasSent) return;
    this.#sent--;
    const request = p.request!;
    request.left--;
    // Given up by its callers (not answered): the rest of the answer is of no use (not sent yet: it is not sent).
    if (request.left === 0 && outcome instanceof Error) request.abort.abort();
    this.#schedule();
  }

  #givenUp(p: Pending): void {
    const target = this.#deps.target(p.item.path);
    if (p.state === 'queued' || p.state === 'leaving') {
      if (p.state === 'queued') this.#queue.splice(this.#queue.indexOf(p), 1);
      this.#settle(p, cancelled(target, p.signal?.reason));
    } else if (p.state === 'sent') {
      this.#settle(p, maybeRan(target, 'the caller gave it up before an answer came', p.signal?.reason));
    }
  }

  /** Makes sure the sweep runs by `deadline`. */
  #arm(deadline: number): void {
    if (deadline >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = deadline;
    this.#timer = this.#deps.clock.setTimer(() => this.#sweep(), Math.max(0, deadline - this.#deps.clock.now()));
  }

  /** Fails the calls whose deadline passed, and waits for the next deadline. */
  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#deps.clock.now();
    let next = Infinity;
    for (const p of [...this.#open]) {
      if (p.item.deadline > now) {
        next = Math.min(next, p.item.deadline);
        continue;
      }
      const target = this.#deps.target(p.item.path);
      if (p.state === 'queued' || p.state === 'leaving') {
        if (p.state === 'queued') this.#queue.splice(this.#queue.indexOf(p), 1);
        this.#settle(p, new CallTimeoutError(target, p.item.timeout));
      } else {
        this.#settle(p, maybeRan(target, `no answer came within ${p.item.timeout} ms`));
      }
    }
    if (next !== Infinity) this.#arm(next);
  }
}

function cancelled(target: string, cause?: unknown): WtdError {
  return new WtdError('ERR_CALL_CANCELLED', `the call to ${target} was given up before it was sent; it did not run`, {
    cause,
  });
}

function maybeRan(target: string, why: string, cause?: unknown): MaybeRanError {
  return new MaybeRanError(target, why, cause === undefined ? undefined : { cause });
}
