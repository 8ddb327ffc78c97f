import { createHash } from 'node:crypto';

/**
 * What a picker reads of a member: its id, this caller's calls in flight to
 * it, how long its answers took of late, and the load it reported at its
 * last probe.
 */
export interface Pickable {
  readonly nodeId: string;
  readonly inFlight: number;
  /** A moving average of its answers' round trips, in ms. */
  readonly latencyMs: number;
  readonly load: number;
}

/**
 * How a {@link MissionGroup} picks the member for a call that has no `key`:
 * `'least-busy'` (the default: the less busy of two members drawn at random,
 * by this caller's calls in flight, then by the load the members reported)
 * or `'round-robin'` (each member in turn). A call with a `key` always goes
 * by rendezvous hashing.
 *
 * @example
 * ```ts
 * const group = node.group('maths', { pick: 'round-robin' });
 * ```
 */
export type PickStrategy = 'least-busy' | 'round-robin';

/**
 * How long a new call to `m` can expect to wait: its calls in flight (this
 * one included) times its recent round trip. Two members equally fast are
 * weighed by their calls in flight alone.
 */
export function busyness(m: Pickable): number {
  return (m.inFlight + 1) * Math.max(m.latencyMs, 0.001);
}

/**
 * The power of two choices: two distinct members drawn at random, the less
 * busy wins ({@link busyness}: calls in flight, weighed by recent round
 * trip), a tie goes to the lower reported load, then to the first drawn. A
 * slow member holds its calls longer and answers later, so it wins seldom.
 * `random` returns a number in [0, 1).
 */
export function leastBusy<T extends Pickable>(
  members: readonly T[],
  random: () => number = Math.random,
): T | undefined {
  const n = members.length;
  if (n <= 1) return members[0];
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = members[i]!;
  const b = members[j]!;
  const wa = busyness(a);
  const wb = busyness(b);
  if (wa !== wb) return wa < wb ? a : b;
  return b.load < a.load ? b : a;
}

/** Each member in turn, by a counter kept across calls (members that come and go shift the turn, no more). */
export class RoundRobin {
  #next = 0;

  pick<T>(members: readonly T[]): T | undefined {
    if (members.length === 0) return undefined;
    const chosen = members[this.#next % members.length];
    this.#next = (this.#next + 1) % Number.MAX_SAFE_INTEGER;
    return chosen;
  }
}

/**
 * The weight of `key` on member `nodeId` for rendezvous hashing: the first
 * 8 bytes of sha256(key, NUL, nodeId). Stable across processes and versions.
 */
export function rendezvousScore(key: string, nodeId: string): bigint {
  return createHash('sha256').update(key).update('\0').update(nodeId).digest().readBigUInt64BE(0);
}

/**
 * Rendezvous (highest random weight) hashing: the member with the highest
 * {@link rendezvousScore} for `key`. The same key goes to the same member
 * while it stays; when a member leaves, only its own keys move, spread over
 * the others.
 */
export function rendezvous<T extends { readonly nodeId: string }>(members: readonly T[], key: string): T | undefined {
  let best: T | undefined;
  let bestScore = -1n;
  for (const m of members) {
    const score = rendezvousScore(key, m.nodeId);
    if (score > bestScore || (score === bestScore && best !== undefined && m.nodeId < best.nodeId)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}
