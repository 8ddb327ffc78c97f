/** Marks a slot whose message was taken out of the middle by a selective receive. */
const HOLE: unique symbol = Symbol('wtd.mailbox.hole');

/**
 * A process's queue of messages: a growable ring buffer.
 *
 * `push` and `shift` are O(1) whatever the backlog. A selective receive that
 * takes a message from the middle leaves a hole instead of moving the rest;
 * holes are skipped by `shift` and squeezed out when they outnumber messages,
 * so removal stays O(1) amortised too.
 * @internal
 */
export class Mailbox {
  // Invariant: the live region is #buf[(#head + k) & #mask] for k < #count;
  // #holes of those slots hold HOLE, the rest hold messages in arrival order.
  #buf: unknown[];
  #mask: number;
  #head = 0;
  #count = 0;
  #holes = 0;

  constructor(capacity = 8) {
    let cap = 8;
    while (cap < capacity) cap <<= 1;
    this.#buf = new Array<unknown>(cap);
    this.#mask = cap - 1;
  }

  /** Messages waiting, not counting holes. */
  get length(): number {
    return this.#count - this.#holes;
  }

  push(msg: unknown): void {
    if (this.#count > this.#mask) this.#grow();
    this.#buf[(this.#head + this.#count) & this.#mask] = msg;
    this.#count++;
  }

  /** Takes the oldest message; the caller checks `length` first. */
  shift(): unknown {
    const buf = this.#buf;
    for (;;) {
      const msg = buf[this.#head];
      buf[this.#head] = undefined;
      this.#head = (this.#head + 1) & this.#mask;
      this.#count--;
      if (msg !== HOLE) return msg;
      this.#holes--;
    }
  }

  /**
   * Takes the oldest message `match` accepts, leaving the others in order.
   * Returns `notFound` when nothing matches. `match` may throw; the mailbox is
   * unchanged then.
   */
  take<N>(match: (msg: unknown) => boolean, notFound: N): unknown {
    const buf = this.#buf;
    const mask = this.#mask;
    const n = this.#count;
    for (let k = 0; k < n; k++) {
      const i = (this.#head + k) & mask;
      const msg = buf[i];
      if (msg === HOLE || !match(msg)) continue;
      if (k === 0) return this.shift();
      if (k === n - 1) {
        buf[i] = undefined;
        this.#count--;
      } else {
        buf[i] = HOLE;
        this.#holes++;
        if (this.#holes > 32 && this.#holes * 2 > this.#count) this.#compact();
      }
      return msg;
    }
    return notFound;
  }

  /** The waiting messages, oldest first (for introspection and flushes). */
  toArray(): unknown[] {
    const out: unknown[] = [];
    for (let k = 0; k < this.#count; k++) {
      const msg = this.#buf[(this.#head + k) & this.#mask];
      if (msg !== HOLE) out.push(msg);
    }
    return out;
  }

  /** Removes every message `match` accepts; returns how many. */
  removeAll(match: (msg: unknown) => boolean): number {
    const keep = this.toArray();
    const kept = keep.filter((m) => !match(m));
    if (kept.length === keep.length && this.#holes === 0) return 0;
    this.#buf.fill(undefined);
    this.#head = 0;
    this.#count = 0;
    this.#holes = 0;
    for (const m of kept) this.push(m);
    return keep.length - kept.length;
  }

  #grow(): void {
    const old = this.#buf;
    const oldMask = this.#mask;
    const next = new Array<unknown>((oldMask + 1) * 2);
    for (let k = 0; k < this.#count; k++) next[k] = old[(this.#head + k) & oldMask];
    this.#buf = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }

  #compact(): void {
    const old = this.#buf;
    const next = new Array<unknown>(old.length);
    let j = 0;
    for (let k = 0; k < this.#count; k++) {
      const msg = old[(this.#head + k) & this.#mask];
      if (msg !== HOLE) next[j++] = msg;
    }
    this.#buf = next;
    this.#head = 0;
    this.#count = j;
    this.#holes = 0;
  }
}
