/**
 * How many messages a process's mailbox holds before messages from other
 * nodes are refused: with the wire's 64 KiB bound on a message, at most
 * 64 MiB per process, which a 1 GB Raspberry Pi can carry.
 */
export const DEFAULT_MAX_MAILBOX = 1000;

/** Marks a slot whose message was taken out of the middle by a selective receive. */
const HOLE: unique symbol = Symbol('wtd.mailbox.hole');

/** The largest chunk; a backlog of a million messages is a thousand of these, never one huge array. */
const MAX_CHUNK = 1024;
const FIRST_CHUNK = 8;

class Chunk {
  readonly buf: unknown[];
  head = 0;
  tail = 0;
  next: Chunk | null = null;
  constructor(size: number) {
    this.buf = new Array<unknown>(size);
  }
}

/**
 * A process's queue of messages: a linked list of array chunks.
 *
 * `push` and `shift` are O(1) whatever the backlog, and a growing backlog
 * never copies what is already queued (a single doubling array would copy a
 * million entries at once and stall the event loop). A selective receive that
 * takes a message from the middle leaves a hole instead of moving the rest;
 * holes are skipped by `shift` and squeezed out when they outnumber
 * messages, so removal stays O(1) amortised too.
 * @internal
 */
export class Mailbox {
  // Invariant: the queued slots are, in order, #first.buf[head..tail) then
  // each following chunk's; #count counts them, #holes of them hold HOLE.
  #first: Chunk;
  #last: Chunk;
  #count = 0;
  #holes = 0;

  constructor() {
    this.#first = this.#last = new Chunk(FIRST_CHUNK);
  }

  /** Messages waiting, not counting holes. */
  get length(): number {
    return this.#count - this.#holes;
  }

  push(msg: unknown): void {
    let last = this.#last;
    if (last.tail === last.buf.length) {
      const chunk = new Chunk(Math.min(last.buf.length * 2, MAX_CHUNK));
      last.next = chunk;
      this.#last = last = chunk;
    }
    last.buf[last.tail++] = msg;
    this.#count++;
  }

  /** Takes the oldest message; the caller checks `length` first. */
  shift(): unknown {
    for (;;) {
      let first = this.#first;
      if (first.head === first.tail) {
        // Only reached with a next chunk: length > 0 means something is queued.
        this.#first = first = first.next!;
      }
      const msg = first.buf[first.head];
      first.buf[first.head++] = undefined;
      this.#count--;
      if (first.head === first.tail && first.next === null) first.head = first.tail = 0;
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
    let front = true;
    for (let c: Chunk | null = this.#first; c !== null; c = c.next) {
      for (let i = c.head; i < c.tail; i++) {
        const msg = c.buf[i];
        if (msg === HOLE) continue;
        if (!match(msg)) {
          front = false;
          continue;
        }
        if (front) {
          // Everything before it is a hole, so shift returns it and drops those holes.
          this.shift();
          return msg;
        }
        c.buf[i] = HOLE;
        this.#holes++;
        if (this.#holes > 32 && this.#holes * 2 > this.#count) this.#compact();
        return msg;
      }
    }
    return notFound;
  }

  /** The waiting messages, oldest first (for introspection and flushes). */
  toArray(): unknown[] {
    const out: unknown[] = [];
    for (let c: Chunk | null = this.#first; c !== null; c = c.next) {
      for (let i = c.head; i < c.tail; i++) if (c.buf[i] !== HOLE) out.push(c.buf[i]);
    }
    return out;
  }

  /** Removes every message `match` accepts; returns how many. */
  removeAll(match: (msg: unknown) => boolean): number {
    const all = this.toArray();
    const kept = all.filter((m) => !match(m));
    this.#refill(kept);
    return all.length - kept.length;
  }

  #compact(): void {
    this.#refill(this.toArray());
  }

  #refill(messages: unknown[]): void {
    this.#first = this.#last = new Chunk(FIRST_CHUNK);
    this.#count = 0;
    this.#holes = 0;
    for (const m of messages) this.push(m);
  }
}
