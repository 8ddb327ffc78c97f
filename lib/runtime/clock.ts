/**
 * Where a node reads the time and arms its one wake-up timer. Inject a
 * {@link ManualClock} to test timeouts and restart intensity without sleeping.
 * @module
 */

/**
 * A timer armed by a {@link Clock}.
 *
 * @example
 * ```ts
 * const timer: ClockTimer = systemClock.setTimer(() => console.log('tick'), 1000);
 * timer.cancel(); // it will not fire
 * ```
 */
export interface ClockTimer {
  /** Disarms the timer; it will not fire. */
  cancel(): void;
  /** Lets the host process exit while this timer is the only thing left. */
  unref?(): void;
  /** Undoes {@link ClockTimer.unref}. */
  ref?(): void;
}

/**
 * The source of time for a node. All values are milliseconds.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(); // a Clock for tests
 * const node = new Node({ name: 'test', clock });
 * clock.advance(5000); // fires the timers due in the next 5 s
 * ```
 */
export interface Clock {
  /** A monotonic time in milliseconds; only differences matter. */
  now(): number;
  /** Calls `fn` once, `delayMs` from now. */
  setTimer(fn: () => void, delayMs: number): ClockTimer;
}

class SystemTimer implements ClockTimer {
  readonly #handle: ReturnType<typeof setTimeout>;
  constructor(handle: ReturnType<typeof setTimeout>) {
    this.#handle = handle;
  }
  cancel(): void {
    clearTimeout(this.#handle);
  }
  unref(): void {
    this.#handle.unref();
  }
  ref(): void {
    this.#handle.ref();
  }
}

/**
 * The real clock: `performance.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * const node = new Node({ name: 'alice', clock: systemClock }); // the default
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  // setTimeout cannot wait longer than 2^31-1 ms; a timer for later re-arms itself.
  setTimer: (fn, delayMs) => new SystemTimer(setTimeout(fn, Math.min(Math.max(0, delayMs), 0x7fffffff))),
};

interface ManualEntry {
  at: number;
  seq: number;
  fn: (() => void) | null;
}

/**
 * A clock that only moves when told to. Timers fire synchronously inside
 * {@link ManualClock.advance}, in deadline order.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * const node = new Node({ name: 'test', clock });
 * // ... start something that waits 5 s ...
 * clock.advance(5000);
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  // Pending timers; cancelled entries have fn = null and are skipped.
  #timers: ManualEntry[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, delayMs: number): ClockTimer {
    const entry: ManualEntry = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#timers.push(entry);
    return {
      cancel: () => {
        entry.fn = null;
      },
    };
  }

  /** How many armed timers have not fired or been cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => t.fn !== null).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(ms) expects a non-negative number of milliseconds, got ${ms}`);
    const target = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => t.fn !== null);
      let next: ManualEntry | undefined;
      for (const t of this.#timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      const fn = next.fn!;
      next.fn = null;
      fn();
    }
    this.#now = target;
  }
}

/**
 * The time of day, for what is signed or stored: a JWS's `iat` and `exp`, a
 * grant's expiry, rate limits, the replay window, the proxy's offline, hold
 * and TTL timers. `now()` is milliseconds since the Unix epoch. It has the
 * shape of a {@link Clock}, so a {@link ManualClock} started at an epoch
 * time drives both in a test.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(Date.UTC(2026, 0, 1)); // a wall clock for tests
 * const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', wallClock: clock });
 * clock.advance(61_000); // a message signed before now is stale
 * ```
 */
export interface WallClock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once, `delayMs` from now. */
  setTimer(fn: () => void, delayMs: number): ClockTimer;
}

/**
 * The real wall clock: `Date.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * const proxy = await WtdProxy.start({ dataDir: ':memory:', wallClock: systemWallClock }); // the default
 * ```
 */
export const systemWallClock: WallClock = {
  now: () => Date.now(),
  setTimer: systemClock.setTimer,
};

/** Seconds since the epoch on `clock`, as JWS claims count them. */
export function epochSeconds(clock: WallClock): number {
  return Math.floor(clock.now() / 1000);
}

/**
 * Calls `fn` every `everyMs` on `clock` until the returned timer is cancelled
 * (a ManualClock fires it as time is advanced past each period).
 */
export function every(clock: WallClock, everyMs: number, fn: () => void): ClockTimer {
  let current: ClockTimer;
  let cancelled = false;
  let unref = false;
  const arm = (): void => {
    current = clock.setTimer(() => {
      if (cancelled) return;
      arm();
      fn();
    }, everyMs);
    if (unref) current.unref?.();
  };
  arm();
  return {
    cancel: () => {
      cancelled = true;
      current.cancel();
    },
    unref: () => {
      unref = true;
      current.unref?.();
    },
  };
}
