import type { RateLimit } from './grant-store.js';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * One token bucket per grant: `count` tokens per `intervalMs`, holding at
 * most `burst`. Kept in memory: after a restart every bucket starts full,
 * which errs towards the grantee by at most one burst.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  /** Takes a token for `kid`. Returns 0 if allowed, else the ms to wait before one is free. */
  take(kid: string, rate: RateLimit, nowMs: number): number {
    const perMs = rate.count / rate.intervalMs;
    let b = this.#buckets.get(kid);
    if (b === undefined) {
      b = { tokens: rate.burst, at: nowMs };
      this.#buckets.set(kid, b);
    }
    b.tokens = Math.min(rate.burst, b.tokens + (nowMs - b.at) * perMs);
    b.at = nowMs;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / perMs);
  }

  /** The tokens `kid` has now, without taking one (a grant not used yet has its whole burst). */
  peek(kid: string, rate: RateLimit, nowMs: number): number {
    const b = this.#buckets.get(kid);
    if (b === undefined) return rate.burst;
    return Math.min(rate.burst, b.tokens + (nowMs - b.at) * (rate.count / rate.intervalMs));
  }

  forget(kid: string): void {
    this.#buckets.delete(kid);
  }
}

/**
 * Reads a rate such as `'10/s'`, `'100/min'`, `'5/h'` (burst defaults to the count).
 *
 * @example
 * ```ts
 * parseRate('10/s'); // { count: 10, intervalMs: 1000, burst: 10 }
 * parseRate('100/min', 20); // burst 20
 * ```
 */
export function parseRate(text: string, burst?: number): RateLimit {
  const m = /^\s*(\d+)\s*\/\s*(ms|s|sec|min|m|h|hour|d|day)\s*$/.exec(text);
  if (m === null) {
    throw new RangeError(`a rate looks like '10/s', '100/min', '5/h' or '50/d', got ${JSON.stringify(text)}`);
  }
  const count = Number(m[1]);
  const unit: Record<string, number> = {
    ms: 1,
    s: 1000,
    sec: 1000,
    min: 60_000,
    m: 60_000,
    h: 3_600_000,
    hour: 3_600_000,
    d: 86_400_000,
    day: 86_400_000,
  };
  if (count < 1) throw new RangeError(`a rate must allow at least one call, got ${JSON.stringify(text)}`);
  return { count, intervalMs: unit[m[2]!]!, burst: burst ?? count };
}
