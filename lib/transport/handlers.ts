import type { KeyObject } from 'node:crypto';
import { RateLimitedError, WireError } from '../errors.js';
import { checkArity } from '../missions/arity.js';
import { behaviourOp, implementsOp, type BehaviourOp } from '../missions/behaviour-ops.js';
import type { MissionTable } from '../missions/mission-table.js';
import type { WallClock } from '../runtime/clock.js';
import type { Logger, Node } from '../runtime/node.js';
import { notGranted, type GrantGate } from '../security/grant-gate.js';
import type { GrantRecord } from '../security/grant-store.js';
import { newSessionId, Session, type Sessions } from '../security/sessions.js';
import { newClaims, type CallClaims, type InboxClaims, type PidClaims, type ReplyClaims } from '../wire/claims.js';
import { deriveKeys, newEphemeral, readPublicKey } from '../wire/session.js';
import type { Encoded } from '../wire/codec.js';
import type { CodecContext, NodeCodec } from './codec-context.js';
import type { Executions } from './executions.js';
import type { NodeIdentity, Signer } from './identity.js';
import type { Link } from './link.js';
import type { PidRegistry, PidRoute } from './pid-registry.js';
import type { PidRoutes } from './pid-routes.js';
import { parseMonitorBody, type RemoteMonitors } from './remote-monitors.js';
import { errorBody } from './refusals.js';

/** A call that passed authentication: its claims, the grant it came under and that grant's key. */
export interface CallRequest {
  claims: CallClaims;
  grant: GrantRecord;
  /** The grant gate's epoch when the grant was read. */
  epoch: number;
  key: KeyObject;
  /** For a relayed request: how to reach its sender (pid messages go back this way). */
  replyLink?: Link;
  /** For a request in a session: seals the reply in it (instead of the node key signing it). */
  seal?: (reply: ReplyClaims) => string;
  /** Set for a request that came in a session (messages to the grantee's pids go back in its sessions). */
  inSession?: boolean;
}

/** A grantee's poll for the messages to its pids that passed authentication. */
export interface InboxRequest {
  claims: InboxClaims;
  grant: GrantRecord;
  relayed: boolean;
  /** For a poll in a session: seals the answer in it. */
  seal?: (reply: ReplyClaims) => string;
}

/** A pid message that passed authentication: its claims and the key id of its sender. */
export interface PidRequest {
  claims: PidClaims;
  kid: string;
}

/** What a handler answers: a status, and a signed reply for calls. */
export interface Answer {
  status: number;
  body?: string;
}

function mailboxFull(): WireError {
  return new WireError('ERR_MAILBOX_FULL', 503, 'the process holds as many messages as it takes; nothing was queued');
}

/** Longest timeout a remote caller may ask a behaviour call to wait, in ms. */
const MAX_BEHAVIOUR_TIMEOUT_MS = 60_000;

/**
 * What a node does with a request once the authentication pipeline passed
 * it: the mission check, the rate, decoding the arguments, running the user
 * code under the grant's executions, and the signed reply. Each runs its
 * checks before any user code.
 */
export class RequestHandlers {
  readonly #node: Node;
  readonly #missions: MissionTable;
  readonly #gate: GrantGate;
  readonly #executions: Executions;
  readonly #routes: PidRoutes;
  readonly #pids: PidRegistry;
  readonly #codec: NodeCodec;
  readonly #identity: NodeIdentity;
  readonly #clock: WallClock;
  readonly #monitors: RemoteMonitors | undefined;
  readonly #sessions: Sessions;
  // For pids in a message from a peer this node keeps no context for:
  // messages to them cannot go anywhere (dropped, as Erlang drops messages
  // to an unreachable node), and the owner is told why.
  readonly #noRoute: PidRoute;

  constructor(deps: {
    node: Node;
    missions: MissionTable;
    gate: GrantGate;
    executions: Executions;
    routes: PidRoutes;
    pids: PidRegistry;
    codec: NodeCodec;
    identity: NodeIdentity;
    clock: WallClock;
    logger: Logger;
    monitors?: RemoteMonitors;
    sessions: Sessions;
  }) {
    this.#monitors = deps.monitors;
    this.#sessions = deps.sessions;
    this.#node = deps.node;
    this.#missions = deps.missions;
    this.#gate = deps.gate;
    this.#executions = deps.executions;
    this.#routes = deps.routes;
    this.#pids = deps.pids;
    this.#codec = deps.codec;
    this.#identity = deps.identity;
    this.#clock = deps.clock;
    this.#noRoute = {
      sendToPid: (id) =>
        deps.logger.error(`a message to pid ${id} of another node was dropped: this node has no way back to it`),
    };
  }

  /** `PUT /apply/<module>/<fn>`: an exported function. */
  async apply(r: CallRequest, params: Record<string, string>): Promise<Answer> {
    const { module, fn } = params as { module: string; fn: string };
    const exported = this.#lookup(r, (mission) => this.#missions.lookupFunction(module, fn, mission));
    this.#inTime(r);
    if (this.#executions.full(r.grant.kid)) throw new RateLimitedError(1);
    this.#gate.take(r.grant);
    const context = this.#context(r);
    const args = this.#args(r.claims.body, context);
    checkArity(exported.path, exported.arity, args.length);
    const run = this.#execute(r, () => exported.invoke(...args));
    if (r.claims.cast === true) {
      run.catch(() => undefined); // a cast whose grant was revoked while it waited is dropped
      return { status: 202 };
    }
    return { status: 200, body: await this.#reply(r, await run, context, exported.idempotent) };
  }

  /** `PUT /behaviour/<mission>/<name>/<op>`: an operation of a behaviour exposed under the mission. */
  async behaviour(r: CallRequest, params: Record<string, string>): Promise<Answer> {
    const { mission, name, op } = params as { mission: string; name: string; op: string };
    const proc = this.#node._lookup(name);
    const module = proc?._behaviour?.behaviourModule ?? proc?._behaviour ?? undefined;
    const exposed = module === undefined ? undefined : this.#missions.behaviourOf(module, mission);
    const operation = this.#lookup(r, (m) =>
      m === mission && exposed !== undefined ? behaviourOp(exposed.kind, op) : undefined,
    );
    if (!implementsOp(exposed!.cls, operation)) {
      throw new WireError('ERR_NOT_SUPPORTED', 404, `${exposed!.module} does not implement ${op}; nothing was run`);
    }
    if (proc!.messageCount >= proc!._maxMailbox) throw mailboxFull();
    this.#inTime(r);
    if (this.#executions.full(r.grant.kid)) throw new RateLimitedError(1);
    this.#gate.take(r.grant);
    const context = this.#context(r);
    const args = this.#args(r.claims.body, context, operation);
    const deadline = r.claims.deadline;
    const left = typeof deadline === 'number' ? Math.max(1, deadline - this.#clock.now()) : MAX_BEHAVIOUR_TIMEOUT_MS;
    const timeout = Math.min(Number(r.claims.timeout) || 5000, left, MAX_BEHAVIOUR_TIMEOUT_MS);
    const ref = { node: this.#node, name };
    const result = await this.#execute(r, () => operation.run(ref, args, timeout));
    return { status: 200, body: await this.#reply(r, result, context) };
  }

  /**
   * `PUT /session`: the first request of a grant, signed with its key,
   * carrying the caller's ephemeral X25519 key (`{ epk }`). It passed the
   * grant checks of a call; it spends none of the grant's rate (a session
   * is not a call) but one of its session openings (16, and one more
   * every 2 s: `ERR_RATE_LIMITED` past them), and is
   * answered, signed by the node key, with the session: its id, this
   * node's ephemeral key, how long it lasts and how many messages it
   * carries. Both sides then derive the session's keys ({@link deriveKeys}).
   */
  session(r: CallRequest): Promise<Answer> {
    const body = r.claims.body as { epk?: unknown } | null;
    const theirs = readPublicKey(body?.epk);
    const wait = this.#sessions.takeHandshake(r.grant.kid);
    if (wait > 0) throw new RateLimitedError(Math.ceil(wait / 1000));
    const mine = newEphemeral();
    const sid = newSessionId();
    const limits = this.#sessions.limits;
    const keys = deriveKeys(mine.privateKey, theirs, {
      client: r.claims.iss,
      server: this.#identity.id,
      grantKid: r.grant.kid,
      clientKey: body!.epk as string,
      serverKey: mine.publicKey,
      sid,
    });
    this.#sessions.addServer(
      new Session({
        sid,
        role: 'server',
        grantKid: r.grant.kid,
        peerNodeId: r.claims.iss,
        peerKid: r.grant.kid,
        ownKid: this.#identity.kid,
        keys,
        expiresAt: this.#clock.now() + limits.lifetimeMs,
        budget: limits.budget,
        clock: this.#clock,
      }),
    );
    const offer = { sid, epk: mine.publicKey, ttlMs: limits.lifetimeMs, budget: limits.budget };
    const claims = newClaims<'reply'>(this.#clock, {
      id: r.claims.id,
      aud: r.claims.iss,
      iss: this.#identity.id,
      body: { session: offer },
    });
    return this.#identity.sign('reply', claims).then((jws) => ({ status: 200, body: jws }));
  }

  /**
   * `PUT /probe`: what the grant covers and how busy this node is
   * (`{ missions, busy }`), for a mission group that weighs whether to make
   * the caller's node a member and where to send its calls. It passed the
   * grant checks like a call, and spends one token of the grant's rate.
   */
  async probe(r: CallRequest): Promise<Answer> {
    this.#gate.take(r.grant);
    const { running, waiting } = this.#executions.load;
    const report = { missions: [...r.grant.missions], busy: running + waiting };
    return { status: 200, body: await this.#reply(r, { ok: report }, this.#context(r)) };
  }

  /** `PUT /pid/<id>`: a message to a pid this node handed to the sender. */
  pid(r: PidRequest, params: Record<string, string>): Answer {
    const id = Number(params.id);
    const body = r.claims.body as Partial<PidClaims['body']> | null;
    if (!Number.isSafeInteger(id) || body === null || typeof body !== 'object' || typeof body.token !== 'string') {
      throw new WireError('ERR_BAD_ARGUMENTS', 400, 'a pid message carries { token, msg }');
    }
    const handed = this.#pids.accept(id, body.token, r.kid);
    if (handed === undefined || !handed.sender.valid()) {
      throw new WireError(
        'ERR_PID_NOT_GRANTED',
        403,
        'this pid was not handed to you, or the grant that carried it ended',
      );
    }
    const context = this.#routes.context(r.kid) ?? { sender: handed.sender, route: this.#noRoute };
    if (!this.#node._sendRemote(handed.pid, this.#codec.decode(body.msg as Encoded, context))) throw mailboxFull();
    return { status: 204 };
  }

  /**
   * `PUT /monitor/<id>`: a monitor signal from a peer that may send pid
   * messages here (see {@link RemoteMonitors}): a monitor request for a pid
   * handed to it, its demonitor, or the news that a pid of its own, which
   * this node monitors, exited.
   */
  monitor(r: PidRequest, params: Record<string, string>): Answer {
    const id = Number(params.id);
    // A path id that is no pid id is as malformed as a bad body: the parser's refusal says what it takes.
    const body = parseMonitorBody(Number.isSafeInteger(id) ? r.claims.body : null);
    const context = this.#routes.context(r.kid);
    if (context === undefined || this.#monitors === undefined) {
      throw new WireError('ERR_PID_NOT_GRANTED', 403, 'this node keeps nothing of yours to monitor');
    }
    this.#monitors.receive(r.kid, id, body, context);
    return { status: 204 };
  }

  /**
   * `PUT /inbox`: a grantee that called directly takes the messages this
   * node has for the pids it handed over (a long poll: held until there
   * are some, or for a while). This is how they reach it: this node never
   * connects to an address a request named. A grantee that came through a
   * proxy gets them back through it instead.
   */
  async inbox(r: InboxRequest): Promise<Answer> {
    const body = r.claims.body as Partial<InboxClaims['body']> | null;
    if (body === null || typeof body !== 'object' || !Number.isSafeInteger(body.ack) || body.ack! < 0) {
      throw new WireError('ERR_BAD_ARGUMENTS', 400, 'an inbox poll carries { ack } (the last seq taken, 0 at first)');
    }
    if (r.relayed) {
      throw new WireError('ERR_BAD_REQUEST', 400, 'through a proxy, messages to your pids come back through it');
    }
    const grant = r.grant;
    // One poll is held per grantee; a second one while one is held, or one that asks again for what
    // it was sent, spends the grant's rate.
    if (this.#routes.costly(grant.kid, body.ack!)) this.#gate.take(grant);
    const messages = await this.#routes.poll(grant.kid, () => this.#gate.messageWait(grant), body.ack!);
    const claims = newClaims<'reply'>(this.#clock, {
      id: r.claims.id,
      aud: r.claims.iss,
      iss: this.#identity.id,
      body: { inbox: messages },
    });
    return { status: 200, body: r.seal !== undefined ? r.seal(claims) : await this.#identity.sign('reply', claims) };
  }

  /**
   * The target a call asks for, under the mission it names or else the first
   * granted one that covers it; found once, here.
   */
  #lookup<T>(r: CallRequest, find: (mission: string) => T | undefined): T {
    const granted = r.grant.missions;
    const claimed = r.claims.mission;
    if (claimed !== undefined) {
      const found = typeof claimed === 'string' && granted.includes(claimed) ? find(claimed) : undefined;
      if (found === undefined) throw notGranted('this grant does not cover that mission and target');
      return found;
    }
    for (const mission of granted) {
      const found = find(mission);
      if (found !== undefined) return found;
    }
    throw notGranted();
  }

  #args(body: unknown, context: CodecContext, op?: BehaviourOp): unknown[] {
    if (body === null || typeof body !== 'object' || !('json' in body)) {
      throw new WireError('ERR_BAD_ARGUMENTS', 400, 'the request carries no encoded body');
    }
    const args = this.#codec.decode(body as Encoded, context);
    if (!Array.isArray(args)) throw new WireError('ERR_BAD_ARGUMENTS', 400, 'the arguments must be an array');
    if (op !== undefined) checkArity('this operation', { min: op.arity, max: op.arity }, args.length);
    return args;
  }

  /**
   * The codec context of a call under a grant: our pids in the reply are
   * handed to the grantee (while the grant stands), and messages to theirs
   * in the arguments wait in the grant's outbox, for the grantee's poll or
   * relayed back through the proxy the request came by.
   */
  #context(r: CallRequest): CodecContext {
    const grant = r.grant;
    const kid = grant.kid;
    const valid = (): boolean => this.#gate.isUsable(kid);
    const relay =
      r.replyLink === undefined
        ? undefined
        : {
            link: r.replyLink,
            aud: r.claims.iss,
            signer:
              r.seal !== undefined || r.inSession === true
                ? this.#sessionSigner(kid)
                : this.#identity.sign.bind(this.#identity),
          };
    const route = this.#routes.routeTo(kid, () => this.#gate.messageWait(grant), valid, relay);
    const context: CodecContext = { sender: { kid, key: r.key, valid }, route };
    this.#routes.register(kid, r.key, r.claims.iss, context);
    return context;
  }

  /**
   * Runs user code for a call under its grant's executions. A request that
   * waited for a turn, or whose grant was read before some grant ended,
   * reads its grant again before it runs, so a revocation also stops
   * requests already queued or still being verified; any other uses the
   * grant it was authenticated with.
   */
  #execute(r: CallRequest, work: () => unknown): Promise<{ ok: unknown } | { error: unknown }> {
    const { grant, epoch } = r;
    return this.#executions.run(grant.kid, async (waited) => {
      if (waited) this.#inTime(r);
      if (waited || epoch !== this.#gate.epoch) this.#gate.usable(grant.kid);
      // Accepted: only now does it count as a use of the grant.
      this.#gate.recordUse(grant.kid);
      try {
        return { ok: await work() };
      } catch (err) {
        return { error: err };
      }
    });
  }

  /**
   * How messages to a grantee's pids are sealed when it came through a
   * proxy in a session: in the newest session it made, at the time each
   * leaves (`ERR_SESSION_UNKNOWN` when none is left: the grantee makes a
   * new one with its next request).
   */
  #sessionSigner(grantKid: string): Signer {
    const signer: Signer = (_kind, claims) => {
      const session = this.#sessions.latest(grantKid);
      if (session === undefined) {
        return Promise.reject(
          new WireError(
            'ERR_SESSION_UNKNOWN',
            401,
            'the grantee holds no session with this node to send it messages in',
          ),
        );
      }
      const c = claims as unknown as PidClaims;
      return Promise.resolve(session.sealRequest({ path: c.path, body: c.body }).text);
    };
    // Messages in a session leave in batches (one request for what leaves at once).
    signer.batches = true;
    return signer;
  }

  /**
   * A request is never started after its caller's deadline: refused, it did
   * not run, and the caller may try again elsewhere.
   */
  #inTime(r: CallRequest): void {
    const deadline = r.claims.deadline;
    if (typeof deadline === 'number' && this.#clock.now() > deadline) {
      throw new WireError(
        'ERR_CALL_TIMEOUT',
        504,
        "the caller's deadline passed before this request could start; it did not run (if this is unexpected, check that both clocks are set right)",
      );
    }
  }

  async #reply(
    r: CallRequest,
    result: { ok: unknown } | { error: unknown },
    context: CodecContext,
    idempotent = false,
  ): Promise<string> {
    let body: { ok: Encoded } | { error: { code: string; message: string } };
    if ('ok' in result) {
      try {
        body = { ok: this.#codec.encode(result.ok, context) };
      } catch (err) {
        body = { error: errorBody(err) };
      }
    } else {
      body = { error: errorBody(result.error) };
    }
    const claims = newClaims<'reply'>(this.#clock, {
      id: r.claims.id,
      aud: r.claims.iss,
      iss: this.#identity.id,
      body,
    });
    if (idempotent) claims.idempotent = true;
    return r.seal !== undefined ? r.seal(claims) : this.#identity.sign('reply', claims);
  }
}
