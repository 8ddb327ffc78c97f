import type { ClockTimer, WallClock } from '../runtime/clock.js';
import type { MonitorControl } from '../wire/claims.js';
import type { Encoded } from '../wire/codec.js';

/**
 * How much a grantee's outbox may hold: what this node has to send to the
 * pids a grantee handed it and the grantee has not taken yet.
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', outbox: { maxMessages: 100 } });
 * ```
 */
export interface OutboxLimits {
  /** Most messages waiting for one grantee. Default 1000. */
  maxMessages: number;
  /** Most bytes (encoded) waiting for one grantee. Default 1 MiB. */
  maxBytes: number;
}

export const DEFAULT_OUTBOX: OutboxLimits = { maxMessages: 1000, maxBytes: 1024 * 1024 };

/** Most messages, and bytes, in one answer to a poll or one batch of a pump. */
export const BATCH_MESSAGES = 100;
export const BATCH_BYTES = 256 * 1024;

/** A message to one of the grantee's pids, encoded when it was sent. */
export interface OutboxMessage {
  /** Its place in this outbox, from 1: the grantee acknowledges up to a `seq`. */
  seq: number;
  /** The pid's id on the grantee's node, and the token it was handed with. */
  id: number;
  token: string;
  msg: Encoded;
  /** Set for a monitor signal: `msg` is its reason. */
  ctl?: MonitorControl;
}

interface Queued extends OutboxMessage {
  bytes: number;
  /** True once it spent a token of the grant's rate (it does so once, when it first leaves). */
  paid: boolean;
}

/**
 * What a grantee's outbox holds and has done, for the observer.
 *
 * @example
 * ```ts
 * for (const [kid, o] of Object.entries(alice.outboxStats())) console.log(kid, o.queued, o.dropped);
 * ```
 */
export interface OutboxStats {
  /** Waiting, or sent and not yet acknowledged. */
  queued: number;
  bytes: number;
  /** Taken by the grantee since the outbox was made. */
  sent: number;
  /** Dropped because the outbox was full (a send never fails, as in Erlang: the drop is counted). */
  dropped: number;
}

/**
 * What this node has to send to the pids one grantee handed it. Messages
 * wait here, in the order they were sent, until the grantee takes them (a
 * long poll it opened, or a pump through the proxy it came by); each spends
 * one token of the grant's rate when it first leaves, so a grantee cannot
 * make this node send faster than its grant allows. Over its bounds a
 * message is dropped and counted.
 */
export class Outbox {
  readonly #limits: OutboxLimits;
  readonly #clock: WallClock;
  /** Takes a token of the grant's message rate: 0 if taken, else the ms until one is free. */
  readonly #spend: () => number;
  readonly #queue: Queued[] = [];
  #bytes = 0;
  #seq = 0;
  #sent = 0;
  #dropped = 0;
  #waiters = new Set<() => void>();
  #refill: ClockTimer | undefined;
  #closed = false;

  constructor(limits: OutboxLimits, clock: WallClock, spend: () => number) {
    this.#limits = limits;
    this.#clock = clock;
    this.#spend = spend;
  }

  /** Queues `msg` for pid `id`; false (and counted) when the outbox is full or closed. */
  push(id: number, token: string, msg: Encoded, ctl?: MonitorControl): boolean {
    const bytes = JSON.stringify(msg).length;
    if (this.#closed || this.#queue.length >= this.#limits.maxMessages || this.#bytes + bytes > this.#limits.maxBytes) {
      this.#dropped++;
      return false;
    }
    this.#queue.push({ seq: ++this.#seq, id, token, msg, bytes, paid: false, ...(ctl === undefined ? {} : { ctl }) });
    this.#bytes += bytes;
    this.#wake();
    return true;
  }

  /** Forgets what the grantee acknowledged: every message up to `seq`. */
  ack(seq: number): void {
    let n = 0;
    while (n < this.#queue.length && this.#queue[n]!.seq <= seq) {
      this.#bytes -= this.#queue[n]!.bytes;
      n++;
    }
    if (n === 0) return;
    this.#queue.splice(0, n);
    this.#sent += n;
    if (this.#queue.length === 0) this.#wake();
  }

  /**
   * The messages that may leave now, oldest first, within a batch's bounds:
   * those sent before and not acknowledged, then new ones while the grant's
   * rate has tokens for them.
   */
  take(): OutboxMessage[] {
    const out: OutboxMessage[] = [];
    let bytes = 0;
    for (const q of this.#queue) {
      if (out.length >= BATCH_MESSAGES || (out.length > 0 && bytes + q.bytes > BATCH_BYTES)) break;
      if (!q.paid) {
        const wait = this.#spend();
        if (wait > 0) {
          this.#refillIn(wait);
          break;
        }
        q.paid = true;
      }
      out.push({ seq: q.seq, id: q.id, token: q.token, msg: q.msg, ...(q.ctl === undefined ? {} : { ctl: q.ctl }) });
      bytes += q.bytes;
    }
    return out;
  }

  /**
   * Resolves when something may be taken, the outbox empties, or it closes
   * (whichever comes first), or when `until` does: then it stops waiting.
   */
  changed(until?: Promise<void>): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.add(resolve);
      void until?.then(() => {
        this.#waiters.delete(resolve);
        resolve();
      });
    });
  }

  /** True when messages that left already wait for an acknowledgement (a poll that acks less asks for them again). */
  get resending(): boolean {
    return this.#queue.length > 0 && this.#queue[0]!.paid;
  }

  /** Messages waiting or not yet acknowledged. */
  get size(): number {
    return this.#queue.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stats(): OutboxStats {
    return { queued: this.#queue.length, bytes: this.#bytes, sent: this.#sent, dropped: this.#dropped };
  }

  /** Drops what is queued (the grant ended): it will never be taken. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropped += this.#queue.length;
    this.#queue.length = 0;
    this.#bytes = 0;
    this.#refill?.cancel();
    this.#wake();
  }

  #refillIn(ms: number): void {
    if (this.#refill !== undefined) return;
    this.#refill = this.#clock.setTimer(() => {
      this.#refill = undefined;
      this.#wake();
    }, ms);
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }
}
