import type { Clock, ClockTimer } from './clock.js';

/**
 * Something that can wait in a {@link TimerQueue}. Receive timeouts, call
 * timeouts and `sendAfter` timers implement this directly, so arming a
 * timeout allocates nothing beyond the object that already exists.
 * @internal
 */
export interface Timed {
  /** Deadline on the node's clock; set by the queue. */
  _at: number;
  /** Insertion order, to fire equal deadlines first-in first-out. */
  _seq: number;
  /** Position in the heap, or -1 when not queued. */
  _heapIndex: number;
  /** Called once when the deadline passes. */
  _timeout(): void;
}

/**
 * All timeouts of one node in a binary min-heap, served by a single clock
 * timer armed for the earliest deadline.
 *
 * Why not one `setTimeout` per timeout: a `GenServer.call` arms and cancels a
 * timeout every time, and a host timer costs about a microsecond each way; a
 * heap entry costs tens of nanoseconds. The host timer is re-armed only when
 * the earliest deadline moves earlier, and is un-referenced when the heap is
 * empty so that a finished program can exit.
 * @internal
 */
export class TimerQueue {
  readonly #clock: Clock;
  // Invariant: #heap[i]._heapIndex === i, and each entry's _at is not less than its parent's.
  readonly #heap: Timed[] = [];
  #seq = 0;
  #armed: ClockTimer | null = null;
  #armedAt = Infinity;
  #armedRef = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Queues `entry` to time out `delayMs` from now. */
  add(entry: Timed, delayMs: number): void {
    const at = this.#clock.now() + delayMs;
    entry._at = at;
    entry._seq = this.#seq++;
    const heap = this.#heap;
    entry._heapIndex = heap.length;
    heap.push(entry);
    this.#up(entry._heapIndex);
    if (at < this.#armedAt) {
      this.#arm(at);
    } else if (!this.#armedRef) {
      this.#armed?.ref?.();
      this.#armedRef = true;
    }
  }

  /** Milliseconds until `entry` falls due, or false if it is not queued. */
  remaining(entry: Timed): number | false {
    return entry._heapIndex < 0 ? false : Math.max(0, entry._at - this.#clock.now());
  }

  /** Removes `entry` if it is queued; returns whether it was. */
  remove(entry: Timed): boolean {
    const i = entry._heapIndex;
    if (i < 0) return false;
    const heap = this.#heap;
    const last = heap.pop()!;
    entry._heapIndex = -1;
    if (last !== entry) {
      heap[i] = last;
      last._heapIndex = i;
      this.#down(i);
      this.#up(last._heapIndex);
    }
    if (heap.length === 0 && this.#armedRef && this.#armed) {
      this.#armed.unref?.();
      this.#armedRef = false;
    }
    return true;
  }

  /** Disarms everything (used when a node stops). */
  clear(): void {
    for (const e of this.#heap) e._heapIndex = -1;
    this.#heap.length = 0;
    this.#armed?.cancel();
    this.#armed = null;
    this.#armedAt = Infinity;
  }

  #arm(at: number): void {
    this.#armed?.cancel();
    this.#armedAt = at;
    this.#armedRef = true;
    this.#armed = this.#clock.setTimer(this.#fire, at - this.#clock.now());
  }

  readonly #fire = (): void => {
    this.#armed = null;
    this.#armedAt = Infinity;
    const heap = this.#heap;
    const now = this.#clock.now();
    // Entries that fall due while we fire (a zero timeout armed by a callback)
    // wait for the next turn, so one callback cannot loop us forever.
    let budget = heap.length;
    while (heap.length > 0 && heap[0]!._at <= now && budget-- > 0) {
      const top = heap[0]!;
      this.remove(top);
      top._timeout();
    }
    if (heap.length > 0 && this.#armed === null) this.#arm(heap[0]!._at);
  };

  #less(a: Timed, b: Timed): boolean {
    return a._at < b._at || (a._at === b._at && a._seq < b._seq);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const item = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!this.#less(item, parent)) break;
      heap[i] = parent;
      parent._heapIndex = i;
      i = p;
    }
    heap[i] = item;
    item._heapIndex = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#less(heap[r]!, heap[l]!) ? r : l;
      const child = heap[c]!;
      if (!this.#less(child, item)) break;
      heap[i] = child;
      child._heapIndex = i;
      i = c;
    }
    heap[i] = item;
    item._heapIndex = i;
  }
}
