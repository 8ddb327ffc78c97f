import type { ClockTimer, WallClock } from './clock.js';
import type { Logger } from './node.js';

/**
 * What a server writes to its owner's log when strangers misbehave: at most
 * one line per refused or aborted request, at most
 * {@link LogThrottleOptions.lines} lines of a kind per interval, then one
 * line saying how many similar lines were left out. A flood of bad requests
 * costs a few lines a minute, not a disk.
 * @module
 */

/** How much a {@link LogThrottle} lets through. */
export interface LogThrottleOptions {
  /** Most lines of one kind per interval. Default 10. */
  lines?: number;
  /** The interval, in ms. Default 60 s. */
  intervalMs?: number;
}

/** One kind's current interval: lines written in it, lines left out, and the timer that ends it. */
interface Window {
  written: number;
  suppressed: number;
  timer: ClockTimer;
}

/**
 * Error codes of a peer that hung up, reset or stalled: its doing, not a
 * fault of this program. (A request body cut off, by its sender or by the
 * server's request timeout, fails as `ECONNRESET` with message `aborted`.)
 */
const CLIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT']);

/**
 * Whether `err` is a client's doing (a refusal with a 4xx status, a request
 * aborted or cut off, a reset socket, a malformed request) rather than a
 * fault of this program: such errors are logged as one line, never with a
 * stack trace.
 */
export function isClientError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { status, code, message } = err as { status?: unknown; code?: unknown; message?: unknown };
  if (typeof status === 'number' && status >= 400 && status < 500) return true;
  if (typeof code === 'string' && (CLIENT_CODES.has(code) || code.startsWith('HPE_'))) return true;
  return message === 'aborted';
}

/**
 * A rate-limited {@link Logger}: each kind of line (a name chosen by the
 * code that logs, never by a client) gets at most `lines` lines per
 * `intervalMs`; the interval starts with its first line, and if any were
 * left out, one line "… N similar lines suppressed" ends it. Time is the
 * given clock's, so a spec drives it with a `ManualClock`.
 */
export class LogThrottle {
  readonly #logger: Logger;
  readonly #clock: WallClock;
  readonly #lines: number;
  readonly #intervalMs: number;
  // A kind is here from its first line until its interval ends.
  readonly #windows = new Map<string, Window>();

  constructor(logger: Logger, clock: WallClock, options: LogThrottleOptions = {}) {
    this.#logger = logger;
    this.#clock = clock;
    this.#lines = options.lines ?? 10;
    this.#intervalMs = options.intervalMs ?? 60_000;
    if (!Number.isInteger(this.#lines) || this.#lines < 1) {
      throw new TypeError(`LogThrottle: options.lines must be a positive integer, got ${String(options.lines)}`);
    }
    if (!(this.#intervalMs > 0)) {
      throw new TypeError(`LogThrottle: options.intervalMs must be a positive number, got ${options.intervalMs}`);
    }
  }

  /** Logs `message` (and `details`) as a line of `kind`, unless this interval had its share of them. */
  line(kind: string, message: string, ...details: unknown[]): void {
    let window = this.#windows.get(kind);
    if (window === undefined) {
      const timer = this.#clock.setTimer(() => this.#end(kind), this.#intervalMs);
      timer.unref?.();
      window = { written: 0, suppressed: 0, timer };
      this.#windows.set(kind, window);
    }
    if (window.written >= this.#lines) {
      window.suppressed++;
      return;
    }
    window.written++;
    this.#logger.error(message, ...details);
  }

  /**
   * Logs an error as a line of `kind`: `message` and the error's own
   * message; the error itself (its stack) only when it is a fault of this
   * program, not a client's doing ({@link isClientError}).
   */
  error(kind: string, message: string, err: unknown): void {
    const text = `${message}: ${err instanceof Error ? err.message : String(err)}`;
    if (isClientError(err)) this.line(kind, text);
    else this.line(kind, text, err);
  }

  /** Ends every interval now, writing what was left out: for a server that stops. */
  flush(): void {
    for (const kind of [...this.#windows.keys()]) {
      this.#windows.get(kind)!.timer.cancel();
      this.#end(kind);
    }
  }

  #end(kind: string): void {
    const window = this.#windows.get(kind);
    if (window === undefined) return;
    this.#windows.delete(kind);
    if (window.suppressed > 0) {
      const s = window.suppressed === 1 ? '' : 's';
      this.#logger.error(`… ${window.suppressed} similar line${s} suppressed (${kind})`);
    }
  }
}
