import { randomBytes } from 'node:crypto';
import { isErrorCode } from '../error-codes.js';
import { WireError, WtdError } from '../errors.js';
import { every, type ClockTimer, type WallClock } from '../runtime/clock.js';
import { NodeDownMessage } from '../runtime/messages.js';
import type { Logger, Node } from '../runtime/node.js';
import { PROCESS, type Pid, type Ref } from '../runtime/pid.js';
import { fireRemote, type Process, type RemoteMonitorHook, type Watcher } from '../runtime/process.js';
import type { MonitorBody } from '../wire/claims.js';
import type { Encoded } from '../wire/codec.js';
import type { CodecContext, NodeCodec } from './codec-context.js';
import { RemoteMailbox, type PidRegistry, type PidRoute } from './pid-registry.js';

/** Most monitors one peer may hold on this node's pids, and this node on one peer's. */
export const DEFAULT_MAX_MONITORS_PER_PEER = 1000;
/** How long a direct peer may fail to answer before its monitors say `'noconnection'`, in ms. */
export const DEFAULT_PEER_DOWN_AFTER_MS = 3000;

const REF = /^[A-Za-z0-9_-]{1,64}$/;
const OPS = new Set(['monitor', 'demonitor', 'down']);

/** A monitor this node holds on a pid of another node. */
interface Outgoing {
  ref: Ref;
  /** Its name on the wire. */
  wire: string;
  id: number;
  token: string;
  route: PidRoute;
  /** The key id the other node's signals about it are signed under here, and that node's id. */
  kid: string;
  nodeId: string;
}

/** A monitor another node holds on one of this node's pids: a local monitor whose `DOWN` goes back. */
interface Incoming {
  local: Ref | undefined;
  watcher: Watcher;
}

/** The reason a refusal of a monitor request gives its `DOWN`. */
function refusalReason(err: unknown): unknown {
  if (!(err instanceof WtdError)) return 'noconnection';
  // Not handed (or already gone): from here, as a pid that does not exist is in OTP.
  if (err.code === 'ERR_PID_NOT_GRANTED') return 'noproc';
  if (err.code === 'ERR_TOO_MANY_MONITORS') return err;
  return 'noconnection';
}

/** A refusal that says the grant (or the peer entry) that carried the pid is gone. */
function grantGone(err: unknown): boolean {
  return (
    err instanceof WireError &&
    (err.status === 401 || err.code === 'ERR_GRANT_REVOKED' || err.code === 'ERR_GRANT_EXPIRED')
  );
}

/**
 * Monitors that cross nodes, both ways (the runtime's hook for them).
 *
 * Out: `self.monitor(pid)` on a pid that came over the wire sends its node
 * a signed monitor request through the route the pid came by (a request
 * under the grant for a node this one called, an entry of the grantee's
 * outbox for a grantee), at most `maxPerPeer` per peer
 * (`ERR_TOO_MANY_MONITORS`, thrown by `monitor`). The `DOWN` comes when
 * that node tells the pid exited, or says `'noconnection'` when the node
 * goes down (`nodeDown`) or the grant ends (`peerGone`); each fires once.
 *
 * In: a monitor request is taken only for a pid this node handed to that
 * peer, under a grant still valid (`ERR_PID_NOT_GRANTED`), at most
 * `maxPerPeer` per peer (`ERR_TOO_MANY_MONITORS`); when the process exits,
 * one `down` notice with its reason goes back the same way as messages to
 * that peer's pids.
 */
export class RemoteMonitors implements RemoteMonitorHook {
  readonly #node: Node;
  readonly #pids: PidRegistry;
  readonly #codec: NodeCodec;
  readonly #logger: Logger;
  readonly #max: number;
  /** Whether node `nodeId` is one this node can reach now (listed by the proxy, or a peer). */
  readonly #known: (nodeId: string) => boolean;
  readonly #out = new Map<string, Outgoing>();
  readonly #outByRef = new Map<Ref, Outgoing>();
  readonly #outByKid = new Map<string, Set<Outgoing>>();
  readonly #in = new Map<string, Map<string, Incoming>>();
  readonly #nodeWatches = new Map<Ref, { nodeId: string; proc: Process }>();
  readonly #clock: WallClock | undefined;
  readonly #downAfterMs: number;
  /** Looks at the grantees that poll this node while monitors are held through them (see {@link #watchdog}). */
  #watchdog: ClockTimer | undefined;

  constructor(deps: {
    node: Node;
    pids: PidRegistry;
    codec: NodeCodec;
    logger: Logger;
    maxPerPeer?: number;
    known?: (nodeId: string) => boolean;
    clock?: WallClock;
    downAfterMs?: number;
  }) {
    this.#clock = deps.clock;
    this.#downAfterMs = deps.downAfterMs ?? DEFAULT_PEER_DOWN_AFTER_MS;
    this.#node = deps.node;
    this.#pids = deps.pids;
    this.#codec = deps.codec;
    this.#logger = deps.logger;
    this.#max = deps.maxPerPeer ?? DEFAULT_MAX_MONITORS_PER_PEER;
    this.#known = deps.known ?? (() => true);
  }

  /** How many monitors are held: by this node on others' pids, by others on this node's, and of nodes. */
  get held(): { out: number; in: number; nodes: number } {
    let n = 0;
    for (const m of this.#in.values()) n += m.size;
    return { out: this.#out.size, in: n, nodes: this.#nodeWatches.size };
  }

  // ---------------------------------------------------------------- out: this node monitors a pid of another

  /** @internal The runtime's hook: a monitor on remote `pid` under `ref`. */
  monitor(ref: Ref, pid: Pid): void {
    const remote = pid[PROCESS];
    const route = remote instanceof RemoteMailbox ? remote.route : undefined;
    const peer = route?.peer;
    if (route === undefined || route.signal === undefined || peer === undefined) {
      // A pid this node keeps no way back to: it cannot hear of it again.
      fireRemote(ref, 'noconnection');
      return;
    }
    const mine = this.#outByKid.get(peer.kid);
    if (mine !== undefined && mine.size >= this.#max) {
      throw new WtdError(
        'ERR_TOO_MANY_MONITORS',
        `this node holds ${this.#max} monitors on node ${peer.nodeId}'s processes already; demonitor some first`,
      );
    }
    const { id, token } = remote as RemoteMailbox;
    const o: Outgoing = { ref, wire: randomBytes(12).toString('base64url'), id, token, route, ...peer };
    this.#out.set(o.wire, o);
    this.#outByRef.set(ref, o);
    if (mine === undefined) this.#outByKid.set(peer.kid, new Set([o]));
    else mine.add(o);
    route.watching?.();
    if (route.silence !== undefined) this.#watch();
    route.signal(id, { op: 'monitor', ref: o.wire, token }).catch((err: unknown) => this.#refused(o, err));
  }

  /** @internal The runtime's hook: the watcher took the monitor down, or exited. Best effort on the other node. */
  demonitor(ref: Ref): void {
    const o = this.#outByRef.get(ref);
    if (o === undefined) return;
    this.#drop(o);
    o.route.signal?.(o.id, { op: 'demonitor', ref: o.wire, token: o.token }).catch(() => undefined);
  }

  #drop(o: Outgoing): void {
    this.#out.delete(o.wire);
    this.#outByRef.delete(o.ref);
    const mine = this.#outByKid.get(o.kid);
    mine?.delete(o);
    if (mine?.size === 0) this.#outByKid.delete(o.kid);
    if (this.#out.size === 0) {
      this.#watchdog?.cancel();
      this.#watchdog = undefined;
    }
  }

  /**
   * While monitors are held on a grantee's pids: a grantee that polls this
   * node for its messages keeps a poll open all the time, so one that has
   * had none open for `downAfterMs` is down (it died, or its network did;
   * a poll it held when it died counts until its hold ends).
   */
  #watch(): void {
    if (this.#watchdog !== undefined || this.#clock === undefined) return;
    this.#watchdog = every(this.#clock, Math.max(10, this.#downAfterMs / 3), () => {
      for (const mine of [...this.#outByKid.values()]) {
        const o = mine.values().next().value;
        const silent = o?.route.silence?.();
        if (o !== undefined && silent !== undefined && silent > this.#downAfterMs) this.nodeDown(o.nodeId);
      }
    });
    this.#watchdog.unref?.();
  }

  #fire(o: Outgoing, reason: unknown): void {
    this.#drop(o);
    fireRemote(o.ref, reason);
  }

  #refused(o: Outgoing, err: unknown): void {
    if (!this.#out.has(o.wire)) return;
    if (grantGone(err)) {
      this.peerGone(o.kid);
      return;
    }
    this.#fire(o, refusalReason(err));
  }

  /**
   * The peer signing under `kid` is gone for good (its grant ended, the
   * connection closed): the monitors held through it say `'noconnection'`,
   * and those it held here go.
   */
  peerGone(kid: string): void {
    for (const o of [...(this.#outByKid.get(kid) ?? [])]) this.#fire(o, 'noconnection');
    const theirs = this.#in.get(kid);
    if (theirs === undefined) return;
    this.#in.delete(kid);
    for (const e of theirs.values()) if (e.local !== undefined) this.#node._demonitor(e.local, e.watcher);
  }

  /** Node `nodeId` went down: its monitors say `'noconnection'`, and monitors of the node fire. */
  nodeDown(nodeId: string): void {
    for (const o of [...this.#out.values()]) if (o.nodeId === nodeId) this.#fire(o, 'noconnection');
    for (const [ref, w] of [...this.#nodeWatches]) {
      if (w.nodeId !== nodeId) continue;
      this.#nodeWatches.delete(ref);
      w.proc._deliver(new NodeDownMessage(nodeId, ref));
    }
  }

  // ---------------------------------------------------------------- nodes

  /** @internal The runtime's hook: `proc` watches node `nodeId` (at once `nodedown` if it cannot be reached now). */
  monitorNode(ref: Ref, nodeId: string, proc: Process): void {
    if (!this.#known(nodeId)) {
      proc._deliver(new NodeDownMessage(nodeId, ref));
      return;
    }
    this.#nodeWatches.set(ref, { nodeId, proc });
    void this.#node.exited(proc.pid).then(() => this.#nodeWatches.delete(ref));
  }

  /** @internal */
  demonitorNode(ref: Ref): boolean {
    return this.#nodeWatches.delete(ref);
  }

  // ---------------------------------------------------------------- in: signals from another node

  /**
   * A monitor signal from the peer signing under `kid` (a request, or an
   * entry of its answer to this node's inbox poll), its reason decoded in
   * `context`. A refused monitor request throws a `WireError`.
   */
  receive(kid: string, id: number, body: MonitorBody, context: CodecContext): void {
    if (body.op === 'down') {
      const o = this.#out.get(body.ref);
      // Only the node the monitor was sent to may fire it, and only for the pid it was set on.
      if (o === undefined || o.kid !== kid || o.id !== id) return;
      if (body.refused !== undefined) {
        this.#refused(o, new WireError(body.refused as never, 403, 'the node refused the monitor'));
        return;
      }
      let reason: unknown;
      try {
        reason = body.reason === undefined ? 'noproc' : this.#codec.decode(body.reason, context);
      } catch {
        reason = 'noproc';
      }
      this.#fire(o, reason);
      return;
    }
    const theirs = this.#in.get(kid);
    if (body.op === 'demonitor') {
      const e = theirs?.get(body.ref);
      if (e === undefined) return;
      theirs!.delete(body.ref);
      if (theirs!.size === 0) this.#in.delete(kid);
      if (e.local !== undefined) this.#node._demonitor(e.local, e.watcher);
      return;
    }
    const handed = this.#pids.accept(id, body.token, kid);
    if (handed === undefined || !handed.sender.valid()) {
      throw new WireError(
        'ERR_PID_NOT_GRANTED',
        403,
        'this pid was not handed to you, or the grant that carried it ended',
      );
    }
    if (theirs?.has(body.ref)) return; // sent again: set once
    if (theirs !== undefined && theirs.size >= this.#max) {
      throw new WireError(
        'ERR_TOO_MANY_MONITORS',
        403,
        `you hold ${this.#max} monitors on this node's processes already; demonitor some first`,
      );
    }
    const map = theirs ?? new Map<string, Incoming>();
    if (theirs === undefined) this.#in.set(kid, map);
    const ref = body.ref;
    const entry: Incoming = {
      local: undefined,
      watcher: {
        _down: (_r, _pid, reason) => {
          if (map.get(ref) !== entry) return;
          map.delete(ref);
          if (map.size === 0 && this.#in.get(kid) === map) this.#in.delete(kid);
          context.route
            .signal?.(id, { op: 'down', ref, token: '', reason })
            .catch((err: unknown) =>
              this.#logger.error(
                `could not tell node ${context.route.peer?.nodeId} that ${handed.pid} exited: ${(err as Error).message}`,
              ),
            );
        },
      },
    };
    map.set(ref, entry);
    // Already dead: the watcher hears 'noproc' at once, and the other node with it.
    const local = this.#node._monitor(entry.watcher, handed.pid);
    if (map.get(ref) === entry) entry.local = local;
  }

  /**
   * An inbox entry that is a monitor signal: as {@link receive}, but a
   * refusal goes back as a `down` carrying its code (there is no request to
   * answer).
   */
  receiveEntry(kid: string, id: number, body: MonitorBody, context: CodecContext): void {
    try {
      this.receive(kid, id, body, context);
    } catch (err) {
      if (!(err instanceof WireError) || body.op !== 'monitor') throw err;
      void context.route
        .signal?.(id, { op: 'down', ref: body.ref, token: '', refused: err.code })
        .catch(() => undefined);
    }
  }
}

/** Reads a monitor signal's body, or refuses it: `ERR_BAD_ARGUMENTS` (400). */
export function parseMonitorBody(body: unknown): MonitorBody {
  const b = body as Partial<MonitorBody> | null;
  const bad = (): never => {
    throw new WireError(
      'ERR_BAD_ARGUMENTS',
      400,
      'a monitor signal carries { op: monitor | demonitor | down, ref, token, reason?, refused? }',
    );
  };
  if (b === null || typeof b !== 'object') return bad();
  if (typeof b.op !== 'string' || !OPS.has(b.op) || typeof b.ref !== 'string' || !REF.test(b.ref)) bad();
  if (typeof b.token !== 'string' || b.token.length > 64) bad();
  const reason = b.reason as Encoded | undefined;
  if (reason !== undefined && (reason === null || typeof reason !== 'object' || !('json' in reason))) bad();
  if (b.refused !== undefined && (typeof b.refused !== 'string' || !isErrorCode(b.refused))) bad();
  return {
    op: b.op!,
    ref: b.ref!,
    token: b.token!,
    ...(reason === undefined ? {} : { reason }),
    ...(b.refused === undefined ? {} : { refused: b.refused }),
  };
}
