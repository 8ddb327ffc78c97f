/**
 * Paired figures: each pair is one run of WTD and one of a peer, taken
 * back to back (which one goes first alternates), so a neighbour that
 * takes the CPU for a while slows both sides of the pairs it falls on.
 * A row reports the median of the pairs' ratios and their spread; the
 * figures themselves move with the machine, the ratio much less.
 */

/** WTD's and the peer's figure in one pair. */
export interface Sample {
  value: number;
  peerValue: number;
  /** When the figures are of CPU time (the row's `time` is 'cpu'): the same pair's figures from the wall time. */
  wall?: { value: number; peerValue: number };
}

/** One run of each side, back to back. */
export interface Pair extends Sample {
  /** How many times better WTD was than the peer in this pair: > 1 means ahead, whatever the unit. */
  ratio: number;
}

/** One row of bench/results/latest.json that compares WTD with a peer. */
export interface Row {
  name: string;
  unit: string;
  /** WTD's figure: the median of its runs (the worst, for a bound such as the loop stall). */
  value: number;
  peer: string;
  /** The peer's figure, taken as `value` is. */
  peerValue: number;
  /**
   * 'cpu': the figures are from the CPU time each side had on the one core
   * they were pinned to (bench/local.ts); absent: from the wall time.
   */
  time?: 'cpu';
  /** The median of the pairs' ratios: > 1 means WTD is ahead, whatever the unit. */
  ratio: number;
  /** The lowest and the highest ratio of a pair. */
  ratioSpread: { min: number; max: number };
  /** The quartiles of the pairs' ratios: the middle half of the pairs lies between them. */
  ratioQuartiles: { q1: number; q3: number };
  /** Every pair, in the order they ran. */
  pairs: Pair[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) throw new RangeError('median of no figures');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The `q` quantile of `xs` (0 ≤ q ≤ 1), interpolated between the two nearest figures. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) throw new RangeError('quantile of no figures');
  const s = [...xs].sort((a, b) => a - b);
  const at = q * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

export function ratioOf(higherIsBetter: boolean, value: number, peerValue: number): number {
  return higherIsBetter ? value / peerValue : peerValue / value;
}

/** The row of `samples` (WTD's and the peer's figure of each pair); `worst` reports each side's worst figure. */
export function pairedRow(
  name: string,
  unit: string,
  peer: string,
  higherIsBetter: boolean,
  samples: Sample[],
  worst = false,
): Row {
  const pairs = samples.map((s) => ({ ...s, ratio: ratioOf(higherIsBetter, s.value, s.peerValue) }));
  const ratios = pairs.map((p) => p.ratio);
  const side = (xs: number[]): number => (worst ? (higherIsBetter ? Math.min(...xs) : Math.max(...xs)) : median(xs));
  return {
    name,
    unit,
    value: side(pairs.map((p) => p.value)),
    peer,
    peerValue: side(pairs.map((p) => p.peerValue)),
    ratio: median(ratios),
    ratioSpread: { min: Math.min(...ratios), max: Math.max(...ratios) },
    ratioQuartiles: { q1: quantile(ratios, 0.25), q3: quantile(ratios, 0.75) },
    pairs,
  };
}

/** The order of the two sides in pair `i`: WTD first in even pairs, the peer first in odd ones. */
export function inTurn<T>(i: number, wtd: T, peer: T): [T, T] {
  return i % 2 === 0 ? [wtd, peer] : [peer, wtd];
}
