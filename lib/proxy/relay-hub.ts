import type Koa from 'koa';
import type { ErrorCode } from '../error-codes.js';
import { ProxyRefusal, WireError } from '../errors.js';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import { peekClaims } from '../wire/envelope.js';
import { parseOutgoing, parsePollBody, type OutgoingRelay, type RelayResult } from '../wire/relay.js';
import type { NodeRecord, ProxyStore } from './store.js';

/** A registered node as the proxy holds it in memory. */
export interface Live {
  record: NodeRecord;
  online: boolean;
  /** Messages waiting for it, kept in step with the store (so an empty queue costs no query). */
  queued: number;
  sent: number;
  received: number;
}

/** The bounds and times of the relay. */
export interface RelayLimits {
  maxQueue: number;
  maxMessageBytes: number;
  messageTtlMs: number;
  maxPolls: number;
  pollHoldMs: number;
}

interface Waiter {
  /** Answers the held poll: with what waits, or with nothing when a newer poll took its place. */
  release(bySuccessor?: boolean): void;
  /** Messages queued for the node while this poll waited (it waited because there were none before). */
  arrived: string[];
}

/** What a poll answers before it is written: results, and the stored JSON of the messages, spliced in as they are. */
export interface PollReply {
  results: RelayResult[];
  messages: string[];
  retryMs?: number;
}

/** Most messages delivered by one poll. */
const POLL_BATCH = 256;

/**
 * The relay of a proxy: per-node queues in the store, the one held poll of
 * each node, and the sweep that expires what nobody collected. A message is
 * written before the proxy acknowledges it and kept until its receiver
 * acknowledges it on its next poll.
 */
export class RelayHub {
  readonly #store: ProxyStore;
  readonly #nodes: Map<string, Live>;
  readonly #limits: RelayLimits;
  readonly #clock: WallClock;
  readonly #waiters = new Map<string, Waiter>();
  #relayed = 0;
  #closed = false;

  readonly #changed: () => void;

  /** `changed` is called when a poll starts to wait (the other changes end a request). */
  constructor(store: ProxyStore, nodes: Map<string, Live>, limits: RelayLimits, clock: WallClock, changed: () => void) {
    this.#changed = changed;
    this.#store = store;
    this.#nodes = nodes;
    this.#limits = limits;
    this.#clock = clock;
  }

  get relayed(): number {
    return this.#relayed;
  }

  get waitingPolls(): number {
    return this.#waiters.size;
  }

  /** Answers every held poll with nothing: the proxy is closing. */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#waiters.values()]) w.release();
  }

  /**
   * A poll: relays the messages it carries, marks those it acknowledges as
   * received, then answers with what waits for the node, holding the answer
   * (up to `pollHoldMs`) while nothing does. One poll per node is held; a
   * new one releases the old with nothing, and brings what is waiting.
   * `admit` records the request's id in the same commit as the rest.
   */
  async poll(live: Live, body: unknown, admit: () => void, ctx: Koa.Context): Promise<PollReply> {
    const id = live.record.id;
    const { ack, messages: outgoing } = parsePollBody(body);
    const results = this.#store.batch(() => {
      admit();
      live.queued -= this.#store.ack(id, ack);
      return outgoing.length === 0 ? [] : this.#send(live, outgoing);
    });
    // One poll per node is held: a new one releases the old, with nothing,
    // after the answers this one may wake have gone out.
    const old = this.#waiters.get(id);
    if (old !== undefined) {
      this.#waiters.delete(id);
      setImmediate(() => old.release(true));
    }
    let messages = this.#take(live);
    if (messages.length > 0 || results.some((r) => r.error !== undefined)) return { results, messages };
    if (this.#waiters.size >= this.#limits.maxPolls) {
      // Messages it carried were taken; only the waiting is refused.
      if (outgoing.length > 0) return { results, messages, retryMs: 1000 };
      throw new ProxyRefusal('ERR_PROXY_BUSY', 503, 'the proxy holds as many polls as it can; poll again in a second');
    }
    let waiter!: Waiter;
    const superseded = await new Promise<boolean>((resolve) => {
      const onClose = (): void => waiter.release(true);
      waiter = {
        arrived: [],
        release: (bySuccessor = false) => {
          timer?.cancel();
          if (this.#waiters.get(id) === waiter) this.#waiters.delete(id);
          ctx.res.off('close', onClose);
          resolve(bySuccessor);
        },
      };
      const timer: ClockTimer | undefined = this.#clock.setTimer(() => waiter.release(), this.#limits.pollHoldMs);
      this.#waiters.set(id, waiter);
      // A poller that hangs up stops waiting.
      ctx.res.once('close', onClose);
      this.#changed();
    });
    if (superseded || this.#closed) return { results, messages: [] };
    // What arrived while it waited is all that waits, unless some of it expired: then ask the store.
    messages = waiter.arrived.length === live.queued ? waiter.arrived : this.#take(live);
    return { results, messages };
  }

  /** The JSON of the oldest messages waiting for `live`. */
  #take(live: Live): string[] {
    if (live.queued === 0) return [];
    return this.#store.take(live.record.id, this.#clock.now(), POLL_BATCH).map((m) => m.body);
  }

  /** Queues messages for their destinations, each with its own result; wakes the destinations' polls. */
  #send(live: Live, messages: unknown[]): RelayResult[] {
    const now = this.#clock.now();
    const woken = new Set<string>();
    const results = messages.map((m): RelayResult => {
      const parsed = parseOutgoing(m);
      if ('error' in parsed) return failure(String(parsed.id), parsed.error);
      try {
        this.#relayOne(live, parsed, now);
        woken.add(parsed.to);
        return { id: parsed.id };
      } catch (err) {
        if (err instanceof WireError) return failure(parsed.id, err);
        throw err;
      }
    });
    for (const to of woken) this.#waiters.get(to)?.release();
    return results;
  }

  #relayOne(live: Live, msg: OutgoingRelay, now: number): void {
    const to = this.#nodes.get(msg.to);
    if (to === undefined) refuse('ERR_PROXY_NOT_REGISTERED', 404, `no node ${msg.to} is registered here`);
    let expiresAt = now + this.#limits.messageTtlMs;
    const { to: _, ...rest } = msg;
    const stored = { ...rest, from: live.record.id };
    if (msg.kind === 'request') {
      // Never later than the request's own expiry: a message past its exp is never delivered.
      const exp = expiryOf(msg.jws);
      if (exp !== undefined) expiresAt = Math.min(expiresAt, exp * 1000);
    }
    const text = JSON.stringify(stored);
    if (Buffer.byteLength(text) > this.#limits.maxMessageBytes) {
      refuse('ERR_PROXY_TOO_LARGE', 413, `a relayed message is at most ${this.#limits.maxMessageBytes} bytes`);
    }
    if (expiresAt <= now) refuse('ERR_PROXY_EXPIRED', 410, 'this message has already expired');
    if (to.queued >= this.#limits.maxQueue) {
      refuse('ERR_PROXY_QUEUE_FULL', 503, `the queue of node ${to.record.id} is full; try again later`);
    }
    if (this.#store.enqueue(to.record.id, msg.id, text, expiresAt)) {
      to.queued++;
      this.#waiters.get(to.record.id)?.arrived.push(text);
      live.sent++;
      to.received++;
      this.#relayed++;
    }
  }

  /** Drops what expired; tells the senders of requests nobody collected, at once. */
  sweep(): void {
    const now = this.#clock.now();
    const lost = this.#store.expire(now);
    for (const m of lost) {
      const to = this.#nodes.get(m.to);
      if (to !== undefined) to.queued--;
    }
    const woken = new Set<string>();
    this.#store.batch(() => {
      for (const m of lost) {
        const msg = JSON.parse(m.body) as { kind: string; from: string; id: string };
        if (msg.kind !== 'request' || !this.#nodes.has(msg.from)) continue;
        const answer = {
          id: `x.${msg.id}`.slice(0, 64),
          kind: 'response',
          from: m.to,
          re: msg.id,
          status: 504,
          contentType: 'application/json',
          text: JSON.stringify({
            error: {
              code: 'ERR_PROXY_EXPIRED',
              message: `node ${m.to} did not collect the message before it expired`,
            },
          }),
        };
        if (this.#store.enqueue(msg.from, answer.id, JSON.stringify(answer), now + this.#limits.messageTtlMs)) {
          this.#nodes.get(msg.from)!.queued++;
          woken.add(msg.from);
        }
      }
    });
    for (const to of woken) this.#waiters.get(to)?.release();
  }
}

function refuse(code: ErrorCode, status: number, message: string): never {
  throw new ProxyRefusal(code, status, message);
}

function failure(id: string, err: WireError): RelayResult {
  return { id, error: { code: err.code, status: err.status, message: err.message } };
}

/** The `exp` a JWS claims, read without verifying (the receiver verifies). */
function expiryOf(jws: string): number | undefined {
  try {
    const exp = peekClaims(jws).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
