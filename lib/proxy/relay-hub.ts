import type Koa from 'koa';
import type { ErrorCode } from '../error-codes.js';
import { ProxyRefusal, WireError } from '../errors.js';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import { peekClaims, peekHeader, peekKid } from '../wire/envelope.js';
import { isSessionMessage } from '../wire/session.js';
import {
  parseOutgoing,
  parsePollBody,
  type OutgoingRelay,
  type RelayRequest,
  type RelayResponse,
  type RelayResult,
} from '../wire/relay.js';
import { unshare, type Live } from './live.js';
import { ROW_BYTES, type Acked, type ProxyStore } from './store.js';

export type { Live } from './live.js';

/** The bounds and times of the relay. */
export interface RelayLimits {
  maxQueue: number;
  maxQueueBytes: number;
  senderShare: number;
  maxSenderBytes: number;
  maxQueuedBytes: number;
  maxMessageBytes: number;
  messageTtlMs: number;
  maxPolls: number;
  pollHoldMs: number;
  sweepBatch: number;
}

interface Waiter {
  /** Answers the held poll: with what waits, or with nothing when a newer poll took its place. */
  release(bySuccessor?: boolean): void;
  /** Messages queued for the node while this poll waited (it waited because there were none before), up to one poll's worth. */
  arrived: { id: string; text: string }[];
  arrivedBytes: number;
}

/**
 * A node's stream to the proxy, as the relay sees it: told when something
 * was queued for the node (it takes what waits at the end of the turn), and
 * ended when the node goes.
 */
export interface StreamSink {
  /** When it was opened, on the proxy's clock. */
  readonly openedAt: number;
  /** Something the stream has not handed over was stored for the node: it asks the store at the end of the turn. */
  wake(): void;
  /** Whether it takes a message to write at the end of this turn ({@link push}): it is writable, and not too far behind. */
  ready(): boolean;
  /** A message, marked taken as it was stored, to write at the end of this turn, or at {@link flush}. */
  push(id: string, text: string): void;
  /** Writes now what it was handed. */
  flush(): void;
  end(): void;
}

/** What a poll answers before it is written: results, and the stored JSON of the messages, spliced in as they are. */
export interface PollReply {
  results: RelayResult[];
  messages: string[];
  retryMs?: number;
}

/** How long after a stream opened a poll of its node may still be one sent before the node knew (it is answered at once). */
const STREAM_CROSSING_MS = 2000;
/** Most messages delivered by one poll, and most bytes after the first. */
const POLL_BATCH = 256;
const POLL_BYTES = 1024 * 1024;
/** Batches of expired messages dropped in one go; more wait for the next turn of the event loop. */
const SWEEP_STEPS = 8;

/**
 * The relay of a proxy: per-node queues in the store, the one held poll of
 * each node, and the sweep that expires what nobody collected. A message is
 * written before the proxy acknowledges it and kept until its receiver
 * acknowledges it on its next poll.
 *
 * What a registration can make it hold is bounded: a destination queues
 * only requests signed under a key id its own ping accepts (and answers
 * to requests it sent, one each); each such key id has a share of the
 * destination's queue; each sender has bytes in flight; each queue and the
 * whole relay have a ceiling of bytes.
 */
export class RelayHub {
  readonly #store: ProxyStore;
  readonly #nodes: Map<string, Live>;
  readonly #ownerOf: (kid: string) => Live | undefined;
  readonly #limits: RelayLimits;
  readonly #clock: WallClock;
  readonly #waiters = new Map<string, Waiter>();
  /** The open stream of each node that has one: it takes the place of a held poll. */
  readonly #sinks = new Map<string, StreamSink>();
  /** Streams handed messages in the commit being made: written once it is made. */
  readonly #pushed = new Set<StreamSink>();
  #relayed = 0;
  #refused = 0;
  /** What every stored message costs, together: bounded by maxQueuedBytes. */
  #bytes = 0;
  #closed = false;
  #sweeping = false;

  readonly #changed: () => void;

  /**
   * `ownerOf` names the registered node whose key a key id is, if any;
   * `changed` is called when a poll starts to wait, a stream opens, ends or
   * has read a line, and after a sweep's later steps (the other changes end
   * a request).
   */
  constructor(
    store: ProxyStore,
    nodes: Map<string, Live>,
    ownerOf: (kid: string) => Live | undefined,
    limits: RelayLimits,
    clock: WallClock,
    changed: () => void,
  ) {
    this.#changed = changed;
    this.#store = store;
    this.#nodes = nodes;
    this.#ownerOf = ownerOf;
    this.#limits = limits;
    this.#clock = clock;
    this.recount();
  }

  get relayed(): number {
    return this.#relayed;
  }

  /** Messages refused since the proxy started. */
  get refused(): number {
    return this.#refused;
  }

  /** What the stored messages cost, in bytes. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  get waitingPolls(): number {
    return this.#waiters.size;
  }

  /** Nodes with a stream open. */
  get streams(): number {
    return this.#sinks.size;
  }

  /**
   * Whether `id` may open a stream: one held poll or stream per node, and
   * no more of them in all than `maxPolls` (the node's own counts as room).
   */
  mayStream(id: string): boolean {
    if (this.#closed) return false;
    const own = this.#sinks.has(id) || this.#waiters.has(id) ? 1 : 0;
    return this.#waiters.size + this.#sinks.size - own < this.#limits.maxPolls;
  }

  /** `sink` is now how messages reach `live`: an older stream ends, a held poll is answered with nothing. */
  attach(live: Live, sink: StreamSink): void {
    const id = live.record.id;
    const old = this.#sinks.get(id);
    this.#sinks.set(id, sink);
    if (old !== undefined && old !== sink) old.end();
    this.#waiters.get(id)?.release(true);
    this.#changed();
  }

  /** The stream of `live` ended. */
  detach(live: Live, sink: StreamSink): void {
    if (this.#sinks.get(live.record.id) === sink) this.#sinks.delete(live.record.id);
    this.#changed();
  }

  /**
   * One line of a node's stream, read as a poll's body: its
   * acknowledgements, then its messages, each relayed with its own result,
   * in one commit. Nothing is held: what waits for the node goes down its
   * stream.
   */
  line(live: Live, body: unknown): RelayResult[] {
    const { ack, messages } = parsePollBody(body);
    const later: (() => void)[] = [];
    let results: RelayResult[] = [];
    try {
      results = messages.length === 0 ? [] : this.#send(live, messages, later);
      // What it relayed to other streams leaves first; then the writes, and its acknowledgements.
      this.#forward();
    } finally {
      this.#planned.clear();
      this.#answering.clear();
      this.#store.batch(() => {
        for (const write of later) write();
        if (ack.length > 0) {
          const keepUntil = this.#clock.now() + this.#limits.messageTtlMs;
          this.#received(live, this.#store.ack(live.record.id, ack, keepUntil));
        }
      });
    }
    for (const to of this.#woken.splice(0)) this.#wake(to);
    // As the end of a request does: whoever waits for a state of the proxy looks again.
    this.#changed();
    return results;
  }

  /** Writes at once what was handed to streams in the commit just made. */
  #forward(): void {
    if (this.#pushed.size === 0) return;
    const sinks = [...this.#pushed];
    this.#pushed.clear();
    for (const sink of sinks) sink.flush();
  }

  /**
   * What a stream hands `live` now, marked taken: with `sent` (on a stream
   * just opened), all that waits but what it holds, also what an earlier
   * poll or stream was handed, added to it; without, only what nothing was
   * handed yet. At most one poll's worth; `more` if anything came (there
   * may be more).
   */
  deliver(live: Live, sent?: Set<string>): { messages: string[]; more: boolean } {
    if (live.queued === 0) return { messages: [], more: false };
    const now = this.#clock.now();
    const id = live.record.id;
    const taken =
      sent !== undefined
        ? this.#store.take(id, now, POLL_BATCH, POLL_BYTES, sent)
        : this.#store.takeFresh(id, now, POLL_BATCH, POLL_BYTES);
    for (const m of taken) sent?.add(m.id);
    return { messages: this.#handed(live, taken), more: taken.length > 0 };
  }

  /** Counts again, from the store, what waits for every node and what every sender holds (at start, after removals). */
  recount(): void {
    const { waiting, held } = this.#store.counts();
    this.#bytes = 0;
    for (const n of this.#nodes.values()) {
      n.queued = 0;
      n.queuedBytes = 0;
      n.shares.clear();
      n.held = 0;
    }
    for (const w of waiting) {
      const to = this.#nodes.get(w.to);
      if (to === undefined) continue;
      to.queued += w.n;
      to.queuedBytes += w.bytes;
      if (w.kid !== null) to.shares.set(w.kid, { n: w.n, bytes: w.bytes });
    }
    for (const h of held) {
      this.#bytes += h.bytes;
      const from = h.from === null ? undefined : this.#nodes.get(h.from);
      if (from !== undefined && h.charged) from.held += h.bytes;
    }
  }

  /** Answers every held poll with nothing: the proxy is closing. */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#waiters.values()]) w.release();
    for (const s of [...this.#sinks.values()]) s.end();
    this.#sinks.clear();
  }

  /** Answers the held poll of a node that is no longer registered, with nothing, and ends its stream. */
  release(id: string): void {
    this.#waiters.get(id)?.release();
    const sink = this.#sinks.get(id);
    this.#sinks.delete(id);
    sink?.end();
  }

  /** Tells whoever waits for `to`'s messages (its held poll, or its stream) that some came. */
  #wake(to: string): void {
    this.#waiters.get(to)?.release();
    this.#sinks.get(to)?.wake();
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
      const now = this.#clock.now();
      this.#received(live, this.#store.ack(id, ack, now + this.#limits.messageTtlMs));
      return outgoing.length === 0 ? [] : this.#send(live, outgoing);
    });
    this.#forward();
    // One poll per node is held: a new one releases the old, with nothing,
    // after the answers this one may wake have gone out.
    const old = this.#waiters.get(id);
    if (old !== undefined) {
      this.#waiters.delete(id);
      setImmediate(() => old.release(true));
    }
    // A node that polls has given up its stream, unless it opened it a moment ago (the poll crossed the
    // stream's opening): then it is not held, as the stream brings what comes for it. (By the proxy's own
    // clock: a node's may be off by more than the moment.)
    const sink = this.#sinks.get(id);
    const streaming = sink !== undefined && this.#clock.now() - sink.openedAt < STREAM_CROSSING_MS;
    if (sink !== undefined && !streaming) {
      this.#sinks.delete(id);
      sink.end();
    }
    let messages = this.#take(live);
    if (messages.length > 0 || results.some((r) => r.error !== undefined) || streaming) {
      return { results, messages: this.#handed(live, messages) };
    }
    if (this.#waiters.size + this.#sinks.size >= this.#limits.maxPolls) {
      // Messages it carried were taken; only the waiting is refused.
      if (outgoing.length > 0) return { results, messages: [], retryMs: 1000 };
      throw new ProxyRefusal('ERR_PROXY_BUSY', 503, 'the proxy holds as many polls as it can; poll again in a second');
    }
    let waiter!: Waiter;
    const superseded = await new Promise<boolean>((resolve) => {
      const onClose = (): void => waiter.release(true);
      waiter = {
        arrived: [],
        arrivedBytes: 0,
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
    // What arrived while it waited is all that waits, unless some of it expired or there was more than
    // one poll's worth: then ask the store.
    messages = waiter.arrived.length === live.queued ? waiter.arrived : this.#take(live);
    return { results, messages: this.#handed(live, messages) };
  }

  /** What a poll hands `live`, marked so: a request handed over may run, and can no longer be taken back. */
  #handed(live: Live, messages: { id: string; text: string }[]): string[] {
    this.#store.markTaken(
      live.record.id,
      messages.map((m) => m.id),
    );
    return messages.map((m) => m.text);
  }

  /** Counts off what `to` acknowledged: from its queue, and from its senders' bytes in flight (but the kept id). */
  #received(to: Live, acked: Acked[]): void {
    for (const a of acked) {
      to.queued--;
      to.queuedBytes -= a.bytes;
      if (a.kid !== null) unshare(to, a.kid, a.bytes);
      const from = a.from === null ? undefined : this.#nodes.get(a.from);
      if (from !== undefined && a.kid !== null) from.held -= a.bytes - ROW_BYTES;
      this.#bytes -= a.bytes - ROW_BYTES;
    }
  }

  /** The oldest messages waiting for `live`. */
  #take(live: Live): { id: string; text: string }[] {
    if (live.queued === 0) return [];
    return this.#store.take(live.record.id, this.#clock.now(), POLL_BATCH, POLL_BYTES);
  }

  /** Queues messages for their destinations, each with its own result; wakes the destinations' polls. */
  /**
   * Relays messages, each with its own result, and wakes the destinations.
   * With `later`, nothing is written to the store here: the counts are
   * taken at once (so each message is checked against those before it),
   * messages for a stream ready to take them are handed to it, and the
   * writes are pushed to `later`, to run (in one commit) once the streams
   * have written what they were handed. A repeat found then counts for
   * nothing (its receiver drops the copy it was handed).
   */
  #send(live: Live, messages: unknown[], later?: (() => void)[]): RelayResult[] {
    const now = this.#clock.now();
    const woken = new Set<string>();
    const results = messages.map((m): RelayResult => {
      const parsed = parseOutgoing(m);
      if ('error' in parsed) return this.#failure(String(parsed.id), parsed.error);
      try {
        if (this.#relayOne(live, parsed, now, later)) woken.add(parsed.to);
        return { id: parsed.id };
      } catch (err) {
        if (err instanceof WireError) return this.#failure(parsed.id, err);
        throw err;
      }
    });
    if (later === undefined) for (const to of woken) this.#wake(to);
    else if (woken.size > 0) later.push(() => this.#woken.push(...woken));
    return results;
  }

  /** Destinations to wake once the writes of a stream's line are made. */
  #woken: string[] = [];

  #failure(id: string, err: WireError): RelayResult {
    this.#refused++;
    return { id, error: { code: err.code, status: err.status, message: err.message } };
  }

  /**
   * Relays one message; true if it is stored and not handed to a stream at
   * once (whoever waits is woken). With `later`, see {@link #send}.
   */
  #relayOne(live: Live, msg: OutgoingRelay, now: number, later?: (() => void)[]): boolean {
    const limits = this.#limits;
    const to = this.#nodes.get(msg.to);
    if (to === undefined) refuse('ERR_PROXY_NOT_REGISTERED', 404, `no node ${msg.to} is registered here`);
    let expiresAt = now + limits.messageTtlMs;
    if (msg.kind === 'cancel') {
      // At once, even in a line: a request it takes back that waits for its write in the same line is
      // not found, and the answer is ERR_MAYBE_RAN (it will be delivered).
      this.#cancel(live, to, msg.re);
      return false;
    }
    const { to: _, ...rest } = msg;
    const stored = { ...rest, from: live.record.id };
    if (msg.kind === 'request') {
      // Never later than the request's own expiry, nor its caller's deadline: past either it is never delivered.
      const { exp, deadline } = timesOf(msg.jws);
      if (exp !== undefined) expiresAt = Math.min(expiresAt, exp * 1000);
      if (deadline !== undefined) expiresAt = Math.min(expiresAt, deadline);
    }
    const text = JSON.stringify(stored);
    const size = Buffer.byteLength(text);
    // A repeat of a message taken already (its sender did not hear back) is dropped, whatever changed since;
    // so is a second copy in the line being read (the first is not written yet).
    const key = `${to.record.id}\n${msg.id}`;
    if (this.#planned.has(key) || this.#store.isQueued(to.record.id, msg.id)) return false;
    const kid = this.#admissible(live, to, msg, size, expiresAt, now);
    const bytes = size + ROW_BYTES;
    const from = live.record.id;
    // To a node whose stream writes it at the end of this turn: handed over as it is stored.
    const sink = this.#sinks.get(to.record.id);
    const taken = sink?.ready() === true;
    const row = { to: to.record.id, id: msg.id, body: text, expiresAt, from, kid, kind: msg.kind, bytes, taken };
    if (later === undefined) {
      if (!this.#store.enqueue(row)) return false;
      if (msg.kind === 'response') this.#store.markAnswered(from, msg.re);
    } else {
      this.#planned.add(key);
      if (msg.kind === 'response') this.#answering.add(`${from}\n${msg.re}`);
      later.push(() => {
        if (!this.#store.enqueue(row)) this.#unqueued(live, to, kid, bytes);
        else if (msg.kind === 'response') this.#store.markAnswered(from, msg.re);
      });
    }
    this.#queued(to, kid, bytes, text, msg.id);
    if (taken) {
      sink!.push(msg.id, text);
      this.#pushed.add(sink!);
    }
    if (kid !== null) live.held += bytes;
    live.sent++;
    to.received++;
    this.#relayed++;
    return !taken;
  }

  /**
   * Messages and responses taken in the line being read, before their
   * writes are made: a second copy is dropped, a second answer refused.
   */
  readonly #planned = new Set<string>();
  readonly #answering = new Set<string>();

  /**
   * The checks of a message from `live` to `to` that may refuse it: size,
   * expiry, whether `to` accepts it, and the bounds. Returns the key id it
   * is charged to (null for a response).
   */
  #admissible(live: Live, to: Live, msg: RelayRequest | RelayResponse, size: number, expiresAt: number, now: number) {
    const limits = this.#limits;
    if (size > limits.maxMessageBytes) {
      refuse('ERR_PROXY_TOO_LARGE', 413, `a relayed message is at most ${limits.maxMessageBytes} bytes`);
    }
    if (expiresAt <= now) refuse('ERR_PROXY_EXPIRED', 410, 'this message has already expired');
    const kid = msg.kind === 'request' ? this.#accepted(live, to, msg.jws) : this.#answers(live, to, msg.re);
    const bytes = size + ROW_BYTES;
    if (to.queued >= limits.maxQueue || to.queuedBytes + bytes > limits.maxQueueBytes) {
      refuse('ERR_PROXY_QUEUE_FULL', 503, `the queue of node ${to.record.id} is full; try again later`);
    }
    if (kid !== null) {
      const share = to.shares.get(kid);
      if (
        share !== undefined &&
        (share.n >= Math.max(1, Math.floor(limits.maxQueue * limits.senderShare)) ||
          share.bytes + bytes > limits.maxQueueBytes * limits.senderShare)
      ) {
        refuse(
          'ERR_PROXY_SENDER_LIMIT',
          429,
          `what is signed under this key already holds its share of node ${to.record.id}'s queue; try again once it has collected`,
        );
      }
    }
    // Answers are not the answerer's to hold back: what a stranger's requests make it answer is bounded by
    // the stranger's own queue, not charged to the bytes the answerer may have in flight.
    if (kid !== null && live.held + bytes > limits.maxSenderBytes) {
      refuse(
        'ERR_PROXY_SENDER_LIMIT',
        429,
        `this node has ${limits.maxSenderBytes} bytes in flight at the proxy already; try again once they are collected`,
      );
    }
    if (this.#bytes + bytes > limits.maxQueuedBytes) {
      refuse('ERR_PROXY_FULL', 503, 'the proxy holds as many queued bytes as it may; try again later');
    }
    return kid;
  }

  /** Takes back the counts of a message found to be a repeat once its write was tried. */
  #unqueued(from: Live, to: Live, kid: string | null, bytes: number): void {
    to.queued--;
    to.queuedBytes -= bytes;
    this.#bytes -= bytes;
    if (kid !== null) {
      unshare(to, kid, bytes);
      from.held -= bytes;
    }
    from.sent--;
    to.received--;
    this.#relayed--;
  }

  /**
   * A caller takes back request `re` it sent `to`: dropped while it waits,
   * and its id kept until it expires (a repeat of it is dropped, an answer
   * refused). Handed over already, or not here: `ERR_MAYBE_RAN`.
   */
  #cancel(from: Live, to: Live, re: string): void {
    const dropped = this.#store.cancel(to.record.id, re, from.record.id);
    if (dropped === undefined) {
      refuse('ERR_MAYBE_RAN', 409, `request ${re} was handed to node ${to.record.id} already, or is not here`);
    }
    this.#received(to, [{ from: from.record.id, kid: dropped.kid, bytes: dropped.bytes }]);
  }

  /**
   * The key id a request to `to` is signed under, if `to` accepts it: its
   * last ping named it, and, when it is a registered node's key, that node
   * sent it (a node key signs only its own node's messages).
   */
  #accepted(from: Live, to: Live, jws: string): string {
    const kid = peekKid(jws);
    const owner = kid === undefined ? undefined : this.#ownerOf(kid);
    if (kid === undefined || (owner !== undefined && owner !== from) || !this.#store.accepts(to.record.id, kid)) {
      refuse(
        'ERR_PROXY_NOT_ACCEPTED',
        403,
        `node ${to.record.id} does not accept messages signed by this key; it needs a grant from that node`,
      );
    }
    return kid;
  }

  /** A response is taken only as the one answer to a request `to` sent `from`. */
  #answers(from: Live, to: Live, re: string): null {
    if (
      this.#answering.has(`${from.record.id}\n${re}`) ||
      this.#store.request(from.record.id, re, to.record.id) !== 'open'
    ) {
      refuse(
        'ERR_PROXY_NOT_ACCEPTED',
        403,
        `node ${to.record.id} sent no request ${re} here that waits for an answer (or it was answered)`,
      );
    }
    return null;
  }

  /** Counts a message queued for `to`, and hands it to `to`'s held poll while one poll's worth has come. */
  #queued(to: Live, kid: string | null, bytes: number, text: string, id: string): void {
    to.queued++;
    to.queuedBytes += bytes;
    this.#bytes += bytes;
    if (kid !== null) {
      const share = to.shares.get(kid);
      if (share === undefined) to.shares.set(kid, { n: 1, bytes });
      else {
        share.n++;
        share.bytes += bytes;
      }
    }
    const waiter = this.#waiters.get(to.record.id);
    if (waiter !== undefined && waiter.arrived.length < POLL_BATCH && waiter.arrivedBytes + bytes <= POLL_BYTES) {
      waiter.arrived.push({ id, text });
      waiter.arrivedBytes += bytes;
    }
  }

  /**
   * Drops what expired, in batches read without their bodies; tells the
   * senders of requests nobody collected, at once. A flood that expired all
   * at once is dropped a few batches per turn of the event loop, so the
   * proxy keeps answering meanwhile. Then returns some freed pages of the
   * store to the file system.
   */
  sweep(): void {
    if (this.#sweeping) return;
    let more = false;
    for (let step = 0; step < SWEEP_STEPS; step++) {
      more = this.#sweepBatch();
      if (!more) break;
    }
    this.#store.vacuum(4096);
    if (!more) return;
    this.#sweeping = true;
    setImmediate(() => {
      this.#sweeping = false;
      if (this.#closed) return;
      this.sweep();
      this.#changed();
    });
  }

  /** One batch of the sweep; true if it was full (more may wait). */
  #sweepBatch(): boolean {
    const now = this.#clock.now();
    const woken = new Set<string>();
    const dropped = this.#store.batch(() => {
      const lost = this.#store.expire(now, this.#limits.sweepBatch);
      for (const m of lost) {
        const to = this.#nodes.get(m.to);
        if (!m.acked && to !== undefined) {
          to.queued--;
          to.queuedBytes -= m.bytes;
          if (m.kid !== null) unshare(to, m.kid, m.bytes);
        }
        const from = m.from === null ? undefined : this.#nodes.get(m.from);
        if (from !== undefined && m.kid !== null) from.held -= m.bytes;
        this.#bytes -= m.bytes;
        // A request handed over may have run: only its caller's own deadline tells it (as "may have run").
        if (m.acked || m.taken || m.kind !== 'request' || from === undefined) continue;
        const id = `x.${m.id}`.slice(0, 64);
        const answer = JSON.stringify({
          id,
          kind: 'response',
          from: m.to,
          re: m.id,
          status: 504,
          contentType: 'application/json',
          text: JSON.stringify({
            error: { code: 'ERR_PROXY_EXPIRED', message: `node ${m.to} did not collect the message before it expired` },
          }),
        });
        const bytes = Buffer.byteLength(answer) + ROW_BYTES;
        // The proxy's own answer, one per request: charged to no sender, but within the ceiling of all
        // (past it, the caller's own timeout tells it).
        if (this.#bytes + bytes > this.#limits.maxQueuedBytes) continue;
        const expiresAt = now + this.#limits.messageTtlMs;
        const own = {
          to: from.record.id,
          id,
          body: answer,
          expiresAt,
          from: null,
          kid: null,
          kind: 'response' as const,
        };
        if (this.#store.enqueue({ ...own, bytes })) {
          this.#queued(from, null, bytes, answer, id);
          woken.add(from.record.id);
        }
      }
      return lost.length;
    });
    for (const to of woken) this.#wake(to);
    return dropped === this.#limits.sweepBatch;
  }
}

function refuse(code: ErrorCode, status: number, message: string): never {
  throw new ProxyRefusal(code, status, message);
}

/**
 * The `exp` and caller's `deadline` a JWS claims, or a session message's
 * protected header says (its body is sealed), read without verifying (the
 * receiver verifies).
 */
function timesOf(jws: string): { exp?: number; deadline?: number } {
  try {
    const { exp, deadline } = isSessionMessage(jws) ? peekHeader(jws) : peekClaims(jws);
    return {
      ...(typeof exp === 'number' && Number.isFinite(exp) ? { exp } : {}),
      ...(typeof deadline === 'number' && Number.isFinite(deadline) ? { deadline } : {}),
    };
  } catch {
    return {};
  }
}
