import type { KeyObject } from 'node:crypto';
import { MaybeRanError, RemoteError, WireError } from '../errors.js';
import {
  BEHAVIOUR_OP_TABLE,
  camelCase,
  type BehaviourKind,
  type BehaviourOp,
  type CamelCase,
} from '../missions/behaviour-ops.js';
import type { WallClock } from '../runtime/clock.js';
import { newClaims, type CallClaims, type InboxMessage, type ReplyClaims } from '../wire/claims.js';
import type { Logger } from '../runtime/node.js';
import { InboxPoller } from './inbox-poller.js';
import { underLoad } from '../wire/envelope.js';
import { signedReply } from './signed-reply.js';
import type { CodecContext, NodeCodec } from './codec-context.js';
import type { Signer } from './identity.js';
import type { Link } from './link.js';
import type { Outbound } from './outbound.js';
import type { PidRoute, PidSender } from './pid-registry.js';
import type { PidRoutes } from './pid-routes.js';
import { refusalFrom, sessionLost } from './refusals.js';
import { ClientSession } from './client-session.js';
import { BATCH_MAX_BYTES, Batcher, checkResults, itemRefusal, type BatchEntry, type BatchResult } from './batch.js';
import {
  CallBatcher,
  FRAMES_TYPE,
  FrameReader,
  checkFrame,
  itemBytes,
  type CallAnswer,
  type CallItem,
} from './calls.js';
import { MAX_RESPONSE_BYTES, type StreamReader } from './http-client.js';
import type { Sessions } from '../security/sessions.js';

/**
 * Options of a remote call.
 *
 * @example
 * ```ts
 * await remote.call('Maths', 'slowSum', [list], { timeout: 30_000, mission: 'maths' });
 * ```
 */
export interface RemoteCallOptions {
  /** How long to wait for the reply, in ms, counted from the call. Default 5000. */
  timeout?: number;
  /** The mission to act under; default: the first granted mission that covers the target. */
  mission?: string;
  /**
   * Aborting it gives the call up: `ERR_CALL_CANCELLED` if the other node
   * had not been handed it yet (it did not run), else `ERR_MAYBE_RAN`.
   */
  signal?: AbortSignal;
  /**
   * Running it twice is harmless: a mission group may retry it on another
   * member after `ERR_MAYBE_RAN`. Default: what the function's
   * `@WtdExport` says (known from an earlier reply, or from the same class
   * loaded on this node).
   */
  idempotent?: boolean;
}

/** @internal How a {@link RemoteNode} reaches its node, and with which keys. */
export interface Connection {
  link: Link;
  via: 'direct' | 'proxy';
  nodeId: string;
  nodeKey: KeyObject;
  nodeKid: string;
  grantKid: string;
  /** Signs with the grant's key. */
  signer: Signer;
  /** The missions a grant file names; undefined for a grant to this node's own key. */
  missions?: string[] | undefined;
}

/** @internal What a {@link RemoteNode} needs of the node that made it. */
export interface RemoteDeps {
  /** This node's id: the `iss` of what it sends, the `aud` of what comes back. */
  nodeId: string;
  codec: NodeCodec;
  routes: PidRoutes;
  outbound: Outbound;
  clock: WallClock;
  logger: Logger;
  /** Delivers a message that came back for one of our pids, sent by the node whose key id is `kid`. */
  receive(kid: string, m: InboxMessage, context: CodecContext): void;
  /** Told when the grant ends (`peerGone`) or the node stops answering (`nodeDown`): monitors through it fire. */
  monitors?: { peerGone(kid: string): void; nodeDown(nodeId: string): void };
  /** How long a direct node's polls may fail before it counts as down, in ms. Default 3000. */
  peerDownAfterMs?: number;
  /** Where sessions are kept; undefined when encryption is off (every request signed, in the clear). */
  sessions?: Sessions;
  /** The node's batchers, one per connection in a session (its settle point waits for them). */
  batches?: Set<Batcher>;
}

/** How long a batch may take to be taken, in ms (as a pid message). */
const BATCH_TIMEOUT_MS = 10_000;

/**
 * The client of one remote behaviour: each operation of
 * `BEHAVIOUR_OP_TABLE[K]`, in camelCase, taking its arguments and optional
 * {@link RemoteCallOptions}.
 *
 * @example
 * ```ts
 * const light: BehaviourClient<'gen_fsm'> = remote.genFsm('traffic', 'light');
 * await light.syncSendEvent('next', { timeout: 2000 });
 * ```
 */
export type BehaviourClient<K extends BehaviourKind> = {
  [
    Op in keyof (typeof BEHAVIOUR_OP_TABLE)[K] & string as CamelCase<Op>
  ]: (typeof BEHAVIOUR_OP_TABLE)[K][Op] extends BehaviourOp<infer A, infer R>
    ? (...args: [...A, options?: RemoteCallOptions]) => Promise<R>
    : never;
};

/**
 * What a node answers a probe: the missions the grant covers, and how many
 * requests (under every grant) run or wait to run there now.
 *
 * @example
 * ```ts
 * const { missions, busy }: ProbeReport = await remote.probe(); // { missions: ['maths'], busy: 3 }
 * ```
 */
export interface ProbeReport {
  missions: string[];
  busy: number;
}

/**
 * Another node, as reached with a grant: call its exported functions and
 * its exposed behaviours. Every request is signed with the grant's key and
 * every reply is checked against the node's key.
 *
 * Errors say whether the call ran (see `outcomeOf`): `ERR_CALL_TIMEOUT`
 * (its deadline, `timeout` counted from the call, passed before it was sent
 * or started: it did not run), `ERR_NODE_DOWN` (cannot connect; nothing was
 * sent), `ERR_CALL_CANCELLED` (given up with `signal` before it was handed
 * over), a {@link Errors.RateLimitedError | RateLimitedError} over the
 * grant's rate (`retryAfterS`), a `WireError` with the remote's refusal code
 * (`ERR_GRANT_REVOKED`, `ERR_MISSION_NOT_GRANTED`, ...): none of these ran;
 * a `RemoteError` when the remote code threw (it ran); `ERR_MAYBE_RAN`
 * (`MaybeRanError`) when it was sent and no answer came in time, or the
 * connection died after it was sent.
 *
 * @example
 * ```ts
 * const remote = await bob.connect(grantFile);
 * await remote.call('Greeter', 'hello', ['bob']);
 * await remote.genServer('greetings', 'visitors').call('visit');
 * ```
 */
export class RemoteNode {
  /** The remote node's id. */
  readonly nodeId: string;
  /** How calls reach it: straight to its address, or through the proxy. */
  readonly via: 'direct' | 'proxy';
  readonly #deps: RemoteDeps;
  readonly #conn: Connection;
  readonly #context: CodecContext;
  readonly #session: ClientSession | undefined;
  /** Seals requests in the grant's session with the node (signs them with the grant's key when encryption is off). */
  readonly #signer: Signer;
  /** Casts, pid messages and monitor signals to the node, in batches (in a session only). */
  readonly #batcher: Batcher | undefined;
  /** Calls made while others are on their way, several to a request (in a session straight to the node only). */
  readonly #calls: CallBatcher | undefined;
  /** Calls on their way on their own (one at most, unless given a signal). */
  #lone = 0;
  #closed = false;

  /** @internal */
  constructor(deps: RemoteDeps, conn: Connection) {
    this.#deps = deps;
    this.#conn = conn;
    this.nodeId = conn.nodeId;
    this.via = conn.via;
    this.#session =
      deps.sessions === undefined
        ? undefined
        : new ClientSession({
            link: conn.link,
            nodeId: deps.nodeId,
            peerId: conn.nodeId,
            peerKey: conn.nodeKey,
            peerKid: conn.nodeKid,
            grantKid: conn.grantKid,
            signer: conn.signer,
            clock: deps.clock,
            sessions: deps.sessions,
          });
    const signer = this.#session?.signer ?? conn.signer;
    this.#signer = signer;
    const batcher = this.#session === undefined ? undefined : new Batcher((entries) => this.#sendBatch(entries));
    this.#batcher = batcher;
    if (batcher !== undefined) deps.batches?.add(batcher);
    this.#calls =
      this.#session === undefined || conn.via !== 'direct'
        ? undefined
        : new CallBatcher({
            clock: deps.clock,
            send: (items, results, signal, leaving) => this.#sendCalls(items, results, signal, leaving),
            target: (path) => `${conn.link.key}${path}`,
            alone: () => this.#lone,
          });
    const undelivered = (id: number, err: unknown): void =>
      deps.logger.error(`could not deliver a message to <${conn.nodeId}.${id}.0>: ${(err as Error).message}`);
    const route: PidRoute = {
      sendToPid: (id, token, msg) => {
        if (this.#closed) return;
        if (batcher === undefined) {
          deps.routes.deliver(conn.link, conn.nodeId, id, token, msg, this.#context, signer);
          return;
        }
        const body = { token, msg: deps.codec.encode(msg, this.#context) };
        batcher.add({ path: `/pid/${id}`, body }).catch((err: unknown) => undelivered(id, err));
      },
      // Monitor signals go the same way, signed with the grant's key; the node's `down` notices come
      // back as messages to our pids do (the inbox poll, which a monitor starts, or relayed).
      signal: async (id, sig) => {
        if (this.#closed) throw new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed');
        if (batcher === undefined) await deps.routes.signal(conn.link, conn.nodeId, id, sig, this.#context, signer);
        else await batcher.add({ path: `/monitor/${id}`, body: deps.routes.monitorBody(sig, this.#context) });
      },
      peer: { kid: conn.nodeKid, nodeId: conn.nodeId },
      watching: conn.via === 'direct' ? () => this.#poller().start() : undefined,
    };
    // Our pids in calls are handed to the remote node; its pids come back through this connection.
    // Straight to its address, messages to our pids come back as answers to a poll we open once we
    // handed it one; through the proxy, they are relayed as requests.
    const sender: PidSender = {
      kid: conn.nodeKid,
      key: conn.nodeKey,
      valid: () => !this.#closed,
      handed: conn.via === 'direct' ? () => this.#poller().start() : undefined,
    };
    this.#context = { sender, route };
    deps.routes.register(conn.nodeKid, conn.nodeKey, conn.nodeId, this.#context);
  }

  #polling: InboxPoller | undefined;

  #poller(): InboxPoller {
    const { clock, logger, nodeId, receive } = this.#deps;
    const conn = this.#conn;
    this.#polling ??= new InboxPoller({
      link: conn.link,
      nodeId,
      peerId: conn.nodeId,
      peerKey: conn.nodeKey,
      peerKid: conn.nodeKid,
      signer: this.#signer,
      ...(this.#session === undefined ? {} : { session: this.#session }),
      clock,
      logger,
      receive: (m) => receive(conn.nodeKid, m, this.#context),
      ended: () => this.#deps.monitors?.peerGone(conn.nodeKid),
      unreachable: () => this.#deps.monitors?.nodeDown(conn.nodeId),
      ...(this.#deps.peerDownAfterMs === undefined ? {} : { downAfterMs: this.#deps.peerDownAfterMs }),
    });
    return this.#polling;
  }

  /**
   * The missions the grant names, when it came as a grant file; undefined
   * for a grant to this node's key (ask the node with {@link probe}).
   */
  get missions(): readonly string[] | undefined {
    return this.#conn.missions;
  }

  /**
   * Asks the node what the grant covers and how busy it is (`PUT /probe`,
   * signed like a call, one token of the grant's rate). Refused as a call
   * would be: `ERR_UNKNOWN_KEY`, `ERR_GRANT_REVOKED`, `ERR_GRANT_EXPIRED`...
   */
  async probe(options: { timeout?: number } = {}): Promise<ProbeReport> {
    const report = (await this.#request(
      '/probe',
      [],
      { timeout: options.timeout ?? 5000 },
      false,
    )) as Partial<ProbeReport>;
    if (
      report === null ||
      typeof report !== 'object' ||
      !Array.isArray(report.missions) ||
      typeof report.busy !== 'number'
    ) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the answer to a probe is not { missions, busy }');
    }
    return { missions: report.missions.map(String), busy: report.busy };
  }

  /** Calls `module.fn(...args)` on the remote node and resolves with its result. */
  call<R = unknown>(module: string, fn: string, args: unknown[] = [], options: RemoteCallOptions = {}): Promise<R> {
    return this.#request(`/apply/${enc(module)}/${enc(fn)}`, args, options, false, true) as Promise<R>;
  }

  /** Runs `module.fn(...args)` on the remote node without waiting for its result; resolves once accepted. */
  async cast(module: string, fn: string, args: unknown[] = [], options: RemoteCallOptions = {}): Promise<void> {
    await this.#request(`/apply/${enc(module)}/${enc(fn)}`, args, options, true);
  }

  /** A GenServer registered as `name` on the remote node, exposed under `mission`: `call`, `cast`. */
  genServer(mission: string, name: string): BehaviourClient<'gen_server'> {
    return this.behaviour('gen_server', mission, name);
  }

  /** A Supervisor registered as `name` on the remote node, exposed under `mission`. */
  supervisor(mission: string, name: string): BehaviourClient<'supervisor'> {
    return this.behaviour('supervisor', mission, name);
  }

  /** A GenEvent manager registered as `name` on the remote node, exposed under `mission`. */
  genEvent(mission: string, name: string): BehaviourClient<'gen_event'> {
    return this.behaviour('gen_event', mission, name);
  }

  /** A GenFsm registered as `name` on the remote node, exposed under `mission`. */
  genFsm(mission: string, name: string): BehaviourClient<'gen_fsm'> {
    return this.behaviour('gen_fsm', mission, name);
  }

  /** A GenStatem registered as `name` on the remote node, exposed under `mission`: `call`, `cast`. */
  genStatem(mission: string, name: string): BehaviourClient<'gen_statem'> {
    return this.behaviour('gen_statem', mission, name);
  }

  /**
   * The client of a behaviour of kind `kind` registered as `name` on the
   * remote node, exposed under `mission`: one method per operation of
   * `BEHAVIOUR_OP_TABLE[kind]`, in camelCase.
   */
  behaviour<K extends BehaviourKind>(kind: K, mission: string, name: string): BehaviourClient<K> {
    const client: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const [op, spec] of Object.entries(BEHAVIOUR_OP_TABLE[kind]) as [string, BehaviourOp][]) {
      const path = `/behaviour/${enc(mission)}/${enc(name)}/${enc(op)}`;
      client[camelCase(op)] = (...given: unknown[]) => {
        const options = (given.length > spec.arity ? given[spec.arity] : undefined) as RemoteCallOptions | undefined;
        return this.#request(path, given.slice(0, spec.arity), { ...options, mission }, false, true);
      };
    }
    return client as BehaviourClient<K>;
  }

  /** @internal */
  _close(): void {
    this.#closed = true;
    this.#polling?.stop();
    this.#session?.close();
    this.#calls?.close();
    this.#conn.link.close?.();
    if (this.#batcher !== undefined) {
      this.#batcher.close();
      this.#deps.batches?.delete(this.#batcher);
    }
    this.#deps.monitors?.peerGone(this.#conn.nodeKid);
  }

  #request(path: string, args: unknown[], options: RemoteCallOptions, cast: boolean, call = false): Promise<unknown> {
    return underLoad(() => this.#send(path, args, options, cast, call));
  }

  async #send(
    path: string,
    args: unknown[],
    options: RemoteCallOptions,
    cast: boolean,
    batchable: boolean,
  ): Promise<unknown> {
    const { clock, codec } = this.#deps;
    const startedAt = clock.now();
    const timeout = options.timeout ?? 5000;
    if (!(timeout > 0)) throw new RangeError(`timeout must be a number of ms > 0, got ${String(timeout)}`);
    // Encoding first: a function in the arguments fails here, before anything is sent.
    const body = codec.encode(args, this.#context);
    // A cast leaves in the next batch to the node, with what else leaves in this turn.
    if (cast && this.#batcher !== undefined && options.signal === undefined) {
      try {
        await this.#batcher.add({
          path,
          body,
          cast: true,
          ...(options.mission === undefined ? {} : { mission: options.mission }),
        });
      } catch (err) {
        this.#ended(err);
        throw err;
      }
      return undefined;
    }
    // A call while others are on their way leaves with this turn's others; alone, it leaves at once.
    const calls = batchable && !cast ? this.#calls : undefined;
    if (calls !== undefined && (this.#lone > 0 || calls.size > 0)) {
      const item: CallItem = {
        path,
        body,
        timeout,
        deadline: startedAt + timeout,
        ...(options.mission === undefined ? {} : { mission: options.mission }),
      };
      const bytes = itemBytes(item);
      if (bytes <= BATCH_MAX_BYTES) return this.#readAnswer(await calls.add(item, bytes, options.signal), path);
    }
    if (calls === undefined) return this.#sendAlone(path, body, options, cast, startedAt, timeout);
    this.#lone++;
    try {
      return await this.#sendAlone(path, body, options, cast, startedAt, timeout);
    } finally {
      this.#lone--;
      calls.wake();
    }
  }

  async #sendAlone(
    path: string,
    body: ReturnType<NodeCodec['encode']>,
    options: RemoteCallOptions,
    cast: boolean,
    startedAt: number,
    timeout: number,
  ): Promise<unknown> {
    const { clock, nodeId } = this.#deps;
    const conn = this.#conn;
    const claims: CallClaims = newClaims<'call'>(clock, {
      aud: conn.nodeId,
      iss: nodeId,
      method: 'PUT',
      path,
      body,
      timeout,
    });
    if (options.mission !== undefined) claims.mission = options.mission;
    // A cast keeps the message's own time to live; a call is never started after its deadline.
    if (cast) claims.cast = true;
    else claims.deadline = startedAt + timeout;
    const signal = options.signal;
    const call = { startedAt, timeout, ...(signal === undefined ? {} : { signal }) };
    const make = (): Promise<string> => this.#signer('call', claims);
    let res = await this.#deps.outbound.request(conn.link, path, make, call);
    // The node no longer holds the session (it restarted), and says so, signed: refused before anything ran,
    // so sent again in a new one. Said without proof, or to a request sent twice, it may have run.
    if (sessionLost(res)) {
      if ((await this.#signer.renew?.(claims, res)) !== true) throw unproven(`${conn.link.key}${path}`);
      res = await this.#deps.outbound.request(conn.link, path, make, call);
    }
    if (res.status === 202 && cast) return undefined;
    if (res.contentType.startsWith('application/jose')) return this.#readReply(res.text, claims, path);
    const refusal = refusalFrom(res);
    this.#ended(refusal);
    throw refusal;
  }

  /** After a refusal: the grant ended, and the monitors it carried will hear nothing more (their DOWN says 'noconnection'). */
  #ended(refusal: unknown): void {
    const code = (refusal as { code?: unknown }).code;
    if (code === 'ERR_GRANT_REVOKED' || code === 'ERR_GRANT_EXPIRED') this.#deps.monitors?.peerGone(this.#conn.nodeKid);
  }

  /**
   * Sends calls as one request (`PUT /calls`, sealed in the session) and
   * hands on each frame's results as it is read: a frame that is not sealed
   * in the session for this request and its place, or carries no results
   * for these calls, fails the calls not answered yet (`ERR_BAD_REPLY`).
   */
  async #sendCalls(
    items: CallItem[],
    results: (answers: [number, CallAnswer][]) => void,
    signal: AbortSignal,
    leaving: () => void,
  ): Promise<void> {
    const { clock, nodeId } = this.#deps;
    const conn = this.#conn;
    const session = this.#session!;
    const claims = newClaims<'call'>(clock, {
      aud: conn.nodeId,
      iss: nodeId,
      method: 'PUT',
      path: '/calls',
      body: { items } as never,
    });
    // Sealed as it leaves (after its turn on the link, and the session's handshake): its calls may run from then.
    const make = async (): Promise<string> => {
      const text = await this.#signer('call', claims);
      leaving();
      return text;
    };
    let deadline = 0;
    for (const item of items) deadline = Math.max(deadline, item.deadline);
    const stop = new AbortController();
    let reader: FrameReader | undefined;
    const stream: StreamReader = (status, type) => {
      if (status !== 200 || !type.startsWith(FRAMES_TYPE)) return undefined;
      // As much as the calls could have been answered alone.
      const frames = new FrameReader(
        (f, text) => results(checkFrame(session.openFrame(claims, f, text), items.length)),
        items.length * MAX_RESPONSE_BYTES,
      );
      reader = frames;
      return (chunk) => {
        frames.push(chunk);
        if (frames.failed !== undefined) stop.abort();
      };
    };
    const startedAt = clock.now();
    const call = { startedAt, timeout: deadline - startedAt, signal: AbortSignal.any([signal, stop.signal]), stream };
    let res;
    try {
      res = await this.#deps.outbound.request(conn.link, '/calls', make, call);
      if (sessionLost(res)) {
        if ((await this.#signer.renew?.(claims, res)) !== true) throw unproven(`${conn.link.key}/calls`);
        res = await this.#deps.outbound.request(conn.link, '/calls', make, call);
      }
    } catch (err) {
      throw (reader as FrameReader | undefined)?.failed ?? err;
    }
    const frames = reader as FrameReader | undefined;
    if (frames?.failed !== undefined) throw frames.failed;
    if (frames === undefined) {
      const refusal =
        res.status === 200
          ? new WireError('ERR_BAD_REPLY', 502, 'the answer to PUT /calls is not frames')
          : refusalFrom(res);
      this.#ended(refusal);
      throw refusal;
    }
    if (frames.cutOff) throw new WireError('ERR_BAD_REPLY', 502, 'the answer to PUT /calls ended inside a frame');
  }

  /** A call's answer from `PUT /calls`: its refusal, or its reply read as {@link #readReply} reads one. */
  #readAnswer(answer: CallAnswer, path: string): unknown {
    const refusal = itemRefusal(answer);
    if (refusal !== undefined) {
      this.#ended(refusal);
      throw refusal;
    }
    return this.#readBody({ body: answer.body!, ...(answer.idempotent === true ? { idempotent: true } : {}) }, path);
  }

  /** Sends one batch (`PUT /batch`, sealed in the session) and reads one result per item. */
  async #sendBatch(entries: BatchEntry[]): Promise<BatchResult[]> {
    const { clock, nodeId } = this.#deps;
    const conn = this.#conn;
    const claims = newClaims<'call'>(clock, {
      aud: conn.nodeId,
      iss: nodeId,
      method: 'PUT',
      path: '/batch',
      body: { items: entries } as never,
    });
    const make = (): Promise<string> => this.#signer('call', claims);
    const call = { startedAt: clock.now(), timeout: BATCH_TIMEOUT_MS };
    let res = await this.#deps.outbound.request(conn.link, '/batch', make, call);
    if (sessionLost(res)) {
      if ((await this.#signer.renew?.(claims, res)) !== true) throw unproven(`${conn.link.key}/batch`);
      res = await this.#deps.outbound.request(conn.link, '/batch', make, call);
    }
    if (res.status !== 200) throw refusalFrom(res);
    // Sealed in the session, as a reply: an answer in the clear is refused (`ERR_BAD_REPLY`).
    const body = this.#session!.openReply(claims, res.text).body as { results?: unknown };
    return checkResults(body.results, entries.length);
  }

  // Paths whose replies said the function is idempotent (bounded: the first ones seen).
  readonly #idempotent = new Set<string>();

  /**
   * True when a reply from `module.fn` said it is marked
   * `@WtdExport(mission, { idempotent: true })` (undefined: no reply said so yet).
   */
  knownIdempotent(module: string, fn: string): boolean | undefined {
    return this.#idempotent.has(`/apply/${enc(module)}/${enc(fn)}`) ? true : undefined;
  }

  async #readReply(jws: string, request: CallClaims, path: string): Promise<unknown> {
    const conn = this.#conn;
    let claims: Pick<ReplyClaims, 'body' | 'idempotent'>;
    if (this.#session !== undefined) claims = this.#session.openReply(request, jws);
    else {
      const from = { kid: conn.nodeKid, key: conn.nodeKey, id: conn.nodeId };
      claims = await signedReply(jws, from, { aud: this.#deps.nodeId, id: request.id }, this.#deps.clock);
    }
    return this.#readBody(claims, path);
  }

  /** A reply's body: its result decoded, or the remote exception it carries thrown. */
  #readBody(claims: Pick<ReplyClaims, 'body' | 'idempotent'>, path: string): unknown {
    if (claims.idempotent === true && this.#idempotent.size < 1024) this.#idempotent.add(path);
    const body = claims.body as Partial<{ ok: unknown; error: { code?: unknown; message?: unknown } }> | undefined;
    if (body !== undefined && body !== null && body.error !== undefined) {
      throw new RemoteError(
        String(body.error.code ?? 'ERR_REMOTE_EXCEPTION'),
        String(body.error.message ?? 'the remote call failed'),
      );
    }
    if (body === undefined || body === null || !('ok' in body))
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply carries no result');
    return this.#deps.codec.decode(body.ok as never, this.#context);
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

/** A session-lost answer the caller cannot take as proof that nothing ran. */
function unproven(target: string): MaybeRanError {
  return new MaybeRanError(target, 'the node answered that the session is gone, with no signed word for this request');
}
