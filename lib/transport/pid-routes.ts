import type { KeyObject } from 'node:crypto';
import PQueue from 'p-queue';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/node.js';
import { formatReason } from '../errors.js';
import { newClaims, type ClaimsOf, type MonitorBody, type MonitorControl } from '../wire/claims.js';
import type { Encoded } from '../wire/codec.js';
import type { CodecContext, NodeCodec } from './codec-context.js';
import type { Signer } from './identity.js';
import type { Link } from './link.js';
import { DEFAULT_OUTBOX, Outbox, type OutboxLimits, type OutboxMessage, type OutboxStats } from './outbox.js';
import type { PidRoute, RouteSignal } from './pid-registry.js';
import { refusalFrom, sessionLost } from './refusals.js';
import { BATCH_MAX_BYTES, BATCH_MAX_ITEMS, batchResults, itemRefusal, type BatchEntry } from './batch.js';

/** How long a message to a remote pid may take to be accepted. */
const PID_SEND_TIMEOUT_MS = 10_000;
/** How long a grantee's poll for its messages is held when there are none, in ms. */
export const INBOX_HOLD_MS = 20_000;

/** Who may send pid messages here: their key, the node id they send as, and how what they send is decoded. */
interface Peer {
  key: KeyObject;
  iss: string;
  context: CodecContext;
}

/** How the messages of a grantee that came through a proxy leave: relayed back the same way. */
export interface RelayBack {
  link: Link;
  /** The grantee's node id. */
  aud: string;
  signer: Signer;
}

interface GrantOutbox {
  box: Outbox;
  relay: RelayBack | undefined;
  pumping: boolean;
  /** Ends the poll held for this grantee, if one is. */
  release: (() => void) | undefined;
  /** When a poll of this grantee last started or ended (or the outbox was made), on the wall clock. */
  lastPoll: number;
}

/**
 * The pid traffic of a node with others, both ways. Inbound: the peers whose
 * signed pid messages it accepts (a grantee, signing with its grant key; a
 * node it called, signing with its node key), by key id, each with the node
 * id it must send as. Outbound to grantees: one bounded {@link Outbox} per
 * grant, which the grantee empties with a long poll it opens (`PUT /inbox`)
 * or which is pumped back through the proxy the grantee came by; this node
 * never opens a connection to an address a request named. Outbound to
 * nodes it called: one ordered queue per link, so that messages arrive in
 * the order they were sent, as between Erlang processes. A peer's entry and
 * outbox go when {@link forget} is told the grant or connection ended.
 */
export class PidRoutes {
  readonly #codec: NodeCodec;
  readonly #clock: WallClock;
  readonly #logger: Logger;
  readonly #iss: string;
  readonly #limits: OutboxLimits;
  readonly #peers = new Map<string, Peer>();
  readonly #outboxes = new Map<string, GrantOutbox>();
  readonly #queues = new Map<string, PQueue>();
  #idle = new Set<() => void>();

  constructor(deps: { codec: NodeCodec; clock: WallClock; logger: Logger; nodeId: string; outbox?: OutboxLimits }) {
    this.#codec = deps.codec;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#iss = deps.nodeId;
    this.#limits = deps.outbox ?? DEFAULT_OUTBOX;
  }

  /** Lets `kid` send pid messages here as node `iss`, decoded in `context`. */
  register(kid: string, key: KeyObject, iss: string, context: CodecContext): void {
    this.#peers.set(kid, { key, iss, context });
  }

  /** The key of a peer allowed to send pid messages here. */
  key(kid: string): KeyObject | undefined {
    return this.#peers.get(kid)?.key;
  }

  /** The node id a peer's messages must carry as `iss`. */
  issuer(kid: string): string | undefined {
    return this.#peers.get(kid)?.iss;
  }

  /** Whether some peer allowed to send pid messages here sends as node `nodeId`. */
  knows(nodeId: string): boolean {
    for (const peer of this.#peers.values()) if (peer.iss === nodeId) return true;
    return false;
  }

  /** The key ids of the peers allowed to send pid messages here. */
  kids(): string[] {
    return [...this.#peers.keys()];
  }

  /** The codec context of a peer's messages. */
  context(kid: string): CodecContext | undefined {
    return this.#peers.get(kid)?.context;
  }

  /** Drops what is kept for `kid`: it may no longer send here, and what waited for its pids is dropped. */
  forget(kid: string): void {
    this.#peers.delete(kid);
    const out = this.#outboxes.get(kid);
    if (out === undefined) return;
    this.#outboxes.delete(kid);
    out.box.close();
    this.#settled();
  }

  /** Closes every outbox (the node is closing): held polls are answered, nothing more leaves. */
  close(): void {
    for (const kid of [...this.#outboxes.keys()]) {
      const out = this.#outboxes.get(kid)!;
      this.#outboxes.delete(kid);
      out.box.close();
    }
    this.#settled();
  }

  /** How many peers and grantee outboxes have state here, and how many links have messages on their way. */
  get held(): { peers: number; grants: number; links: number } {
    return { peers: this.#peers.size, grants: this.#outboxes.size, links: this.#queues.size };
  }

  /** Messages on their way: in link queues, and waiting in grantees' outboxes. */
  get size(): number {
    let n = this.#queues.size;
    for (const out of this.#outboxes.values()) n += out.box.size;
    return n;
  }

  /** What each grantee's outbox holds and has dropped, by grant key id. */
  outboxStats(): Record<string, OutboxStats> {
    const stats: Record<string, OutboxStats> = {};
    for (const [kid, out] of this.#outboxes) stats[kid] = out.box.stats;
    return stats;
  }

  /**
   * How this node sends to pids that grantee `grantKid` handed it: into
   * that grant's outbox, spending `spend` (the grant's message rate) as
   * they leave, while `valid()`. With `relay`, the outbox is pumped back
   * through that proxy; without, it waits for the grantee's poll.
   */
  routeTo(grantKid: string, spend: () => number, valid: () => boolean, relay?: RelayBack): PidRoute {
    const out = this.#outbox(grantKid, spend);
    if (relay !== undefined) out.relay = relay;
    const issuer = (): string => this.issuer(grantKid) ?? '';
    return {
      sendToPid: (id, token, msg) => {
        if (out.box.closed || !valid()) return;
        const context = this.context(grantKid);
        if (context === undefined) return;
        if (!out.box.push(id, token, this.#codec.encode(msg, context))) return;
        if (out.relay !== undefined) this.#pump(out);
      },
      // Monitor signals to the grantee wait in the same outbox, in order with the messages.
      signal: async (id, sig) => {
        const context = this.context(grantKid);
        if (out.box.closed || !valid() || context === undefined) return;
        const ctl: MonitorControl = {
          op: sig.op,
          ref: sig.ref,
          ...(sig.refused === undefined ? {} : { refused: sig.refused }),
        };
        if (!out.box.push(id, sig.token, this.encodeReason(sig.reason ?? null, context), ctl)) return;
        if (out.relay !== undefined) this.#pump(out);
      },
      get peer() {
        return { kid: grantKid, nodeId: issuer() };
      },
      silence: () => {
        if (out.relay !== undefined || out.box.closed) return undefined;
        return out.release !== undefined ? 0 : this.#clock.now() - out.lastPoll;
      },
    };
  }

  /**
   * True when a poll of grantee `grantKid` acknowledging `ack` costs a
   * token: another poll is held, or it asks again for messages that left
   * already (an honest poller does so only when an answer was lost).
   */
  costly(grantKid: string, ack: number): boolean {
    const out = this.#outboxes.get(grantKid);
    if (out === undefined) return false;
    if (out.release !== undefined) return true;
    out.box.ack(ack);
    this.#settled();
    return out.box.resending;
  }

  /**
   * A grantee's poll for its messages: forgets those up to `ack`, then
   * answers with what may leave now, or waits for some (at most
   * {@link INBOX_HOLD_MS}). One poll is held per grantee; a newer one ends
   * the older, which answers with nothing.
   */
  async poll(grantKid: string, spend: () => number, ack: number): Promise<OutboxMessage[]> {
    const out = this.#outbox(grantKid, spend);
    out.lastPoll = this.#clock.now();
    out.box.ack(ack);
    this.#settled();
    out.release?.();
    let over = false;
    let timer: ClockTimer | undefined;
    const ended = new Promise<void>((resolve) => {
      timer = this.#clock.setTimer(resolve, INBOX_HOLD_MS);
      out.release = () => {
        timer?.cancel();
        resolve();
      };
    });
    const mine = out.release;
    void ended.then(() => {
      over = true;
    });
    try {
      for (;;) {
        // A poll that was held to its end, or that a newer one replaced, answers with nothing.
        if (over) return [];
        const batch = out.box.take();
        if (batch.length > 0 || out.box.closed) return batch;
        await out.box.changed(ended);
      }
    } finally {
      timer?.cancel();
      if (out.release === mine) out.release = undefined;
      out.lastPoll = this.#clock.now();
    }
  }

  /** {@link send}, with a failure logged rather than returned (a send never fails, as in Erlang). */
  deliver(
    link: Link,
    aud: string,
    id: number,
    token: string,
    msg: unknown,
    context: CodecContext,
    signer: Signer,
  ): void {
    this.send(link, aud, id, token, msg, context, signer).catch((err: unknown) => this.#undelivered(aud, id, err));
  }

  /**
   * PUT /pid/<id> over `link`: `msg` encoded in `context` now, then signed
   * by `signer` and sent in order. A refusal keeps the callee's code.
   */
  send(
    link: Link,
    aud: string,
    id: number,
    token: string,
    msg: unknown,
    context: CodecContext,
    signer: Signer,
  ): Promise<void> {
    const body = this.#codec.encode(msg, context);
    return this.#queue(link).add(() => this.#put(link, aud, id, token, body, signer));
  }

  /**
   * PUT /monitor/<id> over `link`, in order with the pid messages on it:
   * a monitor signal, its reason encoded in `context` now. A refusal
   * rejects with the callee's code.
   */
  signal(link: Link, aud: string, id: number, sig: RouteSignal, context: CodecContext, signer: Signer): Promise<void> {
    const body = this.monitorBody(sig, context);
    return this.#queue(link).add(() => this.#putSignal(link, aud, id, body, signer));
  }

  /** The body of `PUT /monitor/<id>` for a monitor signal, its reason encoded in `context`. */
  monitorBody(sig: RouteSignal, context: CodecContext): MonitorBody {
    return {
      op: sig.op,
      ref: sig.ref,
      token: sig.token,
      ...(sig.reason === undefined ? {} : { reason: this.encodeReason(sig.reason, context) }),
      ...(sig.refused === undefined ? {} : { refused: sig.refused }),
    };
  }

  /** An exit reason for the wire: encoded as it is, or as a string when it cannot travel (an Error, a function). */
  encodeReason(reason: unknown, context: CodecContext): Encoded {
    try {
      return this.#codec.encode(reason, context);
    } catch {
      return this.#codec.encode(formatReason(reason), context);
    }
  }

  /** Resolves once every message handed to {@link send} was accepted or refused, and every outbox is empty. */
  async onIdle(): Promise<void> {
    for (;;) {
      await Promise.all([...this.#queues.values()].map((q) => q.onIdle()));
      if ([...this.#outboxes.values()].every((o) => o.box.size === 0)) return;
      await new Promise<void>((resolve) => this.#idle.add(resolve));
    }
  }

  async #put(link: Link, aud: string, id: number, token: string, msg: unknown, signer: Signer): Promise<void> {
    const path = `/pid/${id}`;
    const body = { token, msg };
    const claims = newClaims<'pid'>(this.#clock, { aud, iss: this.#iss, method: 'PUT', path, body } as never);
    await this.#sendSigned(link, path, claims, signer);
  }

  /** Sends a pid-kind request (again, once, in a new session when the other node lost the one it was sealed in). */
  async #sendSigned(link: Link, path: string, claims: ClaimsOf['pid'], signer: Signer): Promise<void> {
    let res = await link.request(path, await signer('pid', claims), PID_SEND_TIMEOUT_MS);
    if (sessionLost(res) && (await signer.renew?.(claims, res)) === true) {
      res = await link.request(path, await signer('pid', claims), PID_SEND_TIMEOUT_MS);
    }
    if (res.status !== 204) throw refusalFrom(res);
  }

  async #putSignal(link: Link, aud: string, id: number, body: MonitorBody, signer: Signer): Promise<void> {
    const path = `/monitor/${id}`;
    const claims = newClaims<'pid'>(this.#clock, { aud, iss: this.#iss, method: 'PUT', path, body } as never);
    await this.#sendSigned(link, path, claims, signer);
  }

  /** `PUT /batch` of outbox messages over `link`, sealed by `signer`; an item refused is logged, as a single message's refusal is. */
  async #putBatch(link: Link, aud: string, messages: OutboxMessage[], signer: Signer): Promise<void> {
    const items: BatchEntry[] = messages.map((m) =>
      m.ctl === undefined
        ? { path: `/pid/${m.id}`, body: { token: m.token, msg: m.msg } }
        : { path: `/monitor/${m.id}`, body: { ...m.ctl, token: m.token, reason: m.msg } },
    );
    const path = '/batch';
    const claims = newClaims<'pid'>(this.#clock, {
      aud,
      iss: this.#iss,
      method: 'PUT',
      path,
      body: { items },
    } as never);
    let res = await link.request(path, await signer('pid', claims), PID_SEND_TIMEOUT_MS);
    if (sessionLost(res) && (await signer.renew?.(claims, res)) === true) {
      res = await link.request(path, await signer('pid', claims), PID_SEND_TIMEOUT_MS);
    }
    batchResults(res, items.length).forEach((r, i) => {
      const refusal = itemRefusal(r);
      if (refusal !== undefined) this.#undelivered(aud, messages[i]!.id, refusal);
    });
  }

  /** Sends a relayed grantee's outbox back through its proxy, in order: in batches in a session, else one message at a time. */
  #pump(out: GrantOutbox): void {
    if (out.pumping) return;
    out.pumping = true;
    void (async () => {
      try {
        while (!out.box.closed && out.box.size > 0 && out.relay !== undefined) {
          const batch = out.box.take();
          if (batch.length === 0) {
            await out.box.changed();
            continue;
          }
          const { link, aud, signer } = out.relay;
          if (signer.batches === true) {
            // In a session: what may leave now goes in batches, each one request.
            for (const part of slices(batch)) {
              if (out.box.closed) break;
              await this.#putBatch(link, aud, part, signer).catch((err: unknown) =>
                part.forEach((m) => this.#undelivered(aud, m.id, err)),
              );
              out.box.ack(part.at(-1)!.seq);
              this.#settled();
            }
            continue;
          }
          for (const m of batch) {
            if (out.box.closed) break;
            const sent =
              m.ctl === undefined
                ? this.#put(link, aud, m.id, m.token, m.msg, signer)
                : this.#putSignal(link, aud, m.id, { ...m.ctl, token: m.token, reason: m.msg }, signer);
            await sent.catch((err: unknown) => this.#undelivered(aud, m.id, err));
            out.box.ack(m.seq);
            this.#settled();
          }
        }
      } finally {
        out.pumping = false;
        this.#settled();
      }
    })();
  }

  /** A message that could not be delivered is logged, not returned: a send never fails, as in Erlang. */
  #undelivered(aud: string, id: number, err: unknown): void {
    this.#logger.error(`could not deliver a message to <${aud}.${id}.0>: ${(err as Error).message}`);
  }

  #outbox(grantKid: string, spend: () => number): GrantOutbox {
    let out = this.#outboxes.get(grantKid);
    if (out === undefined) {
      out = {
        box: new Outbox(this.#limits, this.#clock, spend),
        relay: undefined,
        pumping: false,
        release: undefined,
        lastPoll: this.#clock.now(),
      };
      this.#outboxes.set(grantKid, out);
    }
    return out;
  }

  #settled(): void {
    const waiters = [...this.#idle];
    this.#idle.clear();
    for (const w of waiters) w();
  }

  #queue(link: Link): PQueue {
    let queue = this.#queues.get(link.key);
    if (queue === undefined) {
      const created = new PQueue({ concurrency: 1 });
      created.on('idle', () => {
        if (this.#queues.get(link.key) === created) this.#queues.delete(link.key);
      });
      this.#queues.set(link.key, created);
      queue = created;
    }
    return queue;
  }
}

/** Outbox messages cut into batches within {@link BATCH_MAX_ITEMS} and {@link BATCH_MAX_BYTES} (at least one each). */
function slices(messages: OutboxMessage[]): OutboxMessage[][] {
  const out: OutboxMessage[][] = [];
  let part: OutboxMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const b = Buffer.byteLength(JSON.stringify(m.msg)) + 64;
    if (part.length > 0 && (part.length >= BATCH_MAX_ITEMS || bytes + b > BATCH_MAX_BYTES)) {
      out.push(part);
      part = [];
      bytes = 0;
    }
    part.push(m);
    bytes += b;
  }
  if (part.length > 0) out.push(part);
  return out;
}
