import type { IncomingMessage, Server } from 'node:http';
import { PassThrough } from 'node:stream';
import type { KeyObject } from 'node:crypto';
import { RateLimitedError, WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import type { LogThrottle } from '../runtime/log-throttle.js';
import { authenticate, checkTime, type KeyResolver } from '../security/authenticate.js';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../security/connection-guard.js';
import type { GrantGate } from '../security/grant-gate.js';
import type { GrantRecord } from '../security/grant-store.js';
import type { ReplayWindow } from '../security/replay-window.js';
import type { Session, SessionReply, Sessions } from '../security/sessions.js';
import type { CallClaims, InboxClaims, MessageKind, PidClaims, ReplyClaims } from '../wire/claims.js';
import { isSessionMessage, readSessionHeader, SESSION_TYP, type SessionHeader } from '../wire/session.js';
import { newClaims } from '../wire/claims.js';
import { underLoad } from '../wire/envelope.js';
import { readJwsBody } from '../wire/request-body.js';
import type { Answers } from './answers.js';
import { parseBatch, type BatchEntry, type BatchResult } from './batch.js';
import { FRAMES_TYPE, parseCalls, streamCalls, type CallAnswer, type CallItem, type CallsFrame } from './calls.js';
import type { Answer, RequestHandlers } from './handlers.js';
import type { HttpResponse } from './http-client.js';
import type { Link } from './link.js';
import type { PidRoutes } from './pid-routes.js';
import type { RefusalLog } from './refusal-log.js';
import { refusalResponse } from './refusals.js';
import { StreamServer } from './call-stream.js';

/**
 * Limits of the hardened server: the body's size, and the connection
 * bounds of {@link ConnectionLimits} (256 in all, 32 per source, headers in
 * 5 s, the whole request in 10 s, 5 s idle between requests).
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({
 *   name: 'alice',
 *   dataDir: ':memory:',
 *   limits: { maxConnections: 64, maxConnectionsPerSource: 8 },
 * });
 * ```
 */
export interface ServerLimits extends ConnectionLimits {
  /** Largest request body, in bytes. Default 64 KiB. */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxBodyBytes: 64 * 1024,
  ...DEFAULT_CONNECTION_LIMITS,
};

/** A route of the apply tree, matched from a request path. */
export interface RouteMatch {
  name: 'apply' | 'behaviour' | 'pid' | 'inbox' | 'monitor' | 'probe' | 'session' | 'batch' | 'calls';
  kind: MessageKind;
  params: Record<string, string>;
}

const ROUTES: { name: RouteMatch['name']; kind: MessageKind; keys: string[] }[] = [
  { name: 'apply', kind: 'call', keys: ['module', 'fn'] },
  { name: 'behaviour', kind: 'call', keys: ['mission', 'name', 'op'] },
  { name: 'pid', kind: 'pid', keys: ['id'] },
  { name: 'inbox', kind: 'call', keys: [] },
  { name: 'monitor', kind: 'pid', keys: ['id'] },
  { name: 'probe', kind: 'call', keys: [] },
  { name: 'session', kind: 'call', keys: [] },
  { name: 'batch', kind: 'call', keys: [] },
  { name: 'calls', kind: 'call', keys: [] },
];

/** Matches `/apply/<module>/<function>`, `/behaviour/<mission>/<name>/<op>`, `/pid/<id>`, `/monitor/<id>`, `/inbox`, `/probe` or `/session`; undefined otherwise. */
export function matchRoute(path: string): RouteMatch | undefined {
  const parts = path.split('/');
  if (parts[0] !== '') return undefined;
  const route = ROUTES.find((r) => r.name === parts[1] && parts.length === r.keys.length + 2);
  if (route === undefined) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.keys.length; i++) {
    let value: string;
    try {
      value = decodeURIComponent(parts[i + 2]!);
    } catch {
      return undefined;
    }
    if (value.length === 0) return undefined;
    params[route.keys[i]!] = value;
  }
  return { name: route.name, kind: route.kind, params };
}

/** How a request arrived, for the handlers: relayed requests are answered through the same proxy. */
export interface Arrival {
  /**
   * Set when the request came through a proxy: the node id the proxy
   * authenticated as its sender (its `iss` must be that), and how to reach
   * that node the same way.
   */
  relayed?: { from: string; link: Link };
  /** Who sent it, for the refusal log: the remote address, or the relaying proxy and sender. */
  source?: string;
}

/** A call's grant, and its key. */
interface GrantKey {
  grant: GrantRecord;
  key: KeyObject;
  epoch: number;
}

/** What the dispatcher needs: who we are, how keys and grants are found, and where requests go once checked. */
export interface DispatcherDeps {
  nodeId: string;
  gate: GrantGate;
  routes: PidRoutes;
  replay: ReplayWindow;
  clock: WallClock;
  handlers: RequestHandlers;
  /** The answers kept for resends: a request is run at most once. */
  answers: Answers;
  refusals: RefusalLog;
  /** The node's log, throttled: strangers cannot fill it. */
  log: LogThrottle;
  /** The sessions callers made with this node, and those it made as a caller. */
  sessions: Sessions;
  /**
   * Whether a request must come in a session (the default, so that nothing
   * this node answers travels in the clear); false when encryption is off.
   */
  requireSessions: boolean;
  /** Signs a reply with the node key (the proof that a session is gone). */
  signReply: (claims: ReplyClaims) => Promise<string>;
}

/** The signed proof a session-lost refusal carries, by refusal. */
const LOST_PROOF = new WeakMap<WireError, string>();

function wrongIssuer(): WireError {
  return new WireError(
    'ERR_WRONG_ISSUER',
    403,
    'this request claims to come from another node than the one its key is bound to',
  );
}

/** A relayed request's `iss` must be the sender the proxy authenticated. */
function checkRelayedIssuer(iss: string, arrival: Arrival): void {
  if (arrival.relayed !== undefined && arrival.relayed.from !== iss) throw wrongIssuer();
}

const NOT_FOUND = (): WireError =>
  new WireError('ERR_NOT_FOUND', 404, 'no such route; use PUT /apply, /behaviour, /pid, /monitor, /inbox or /session');

function unknownSession(): WireError {
  return new WireError(
    'ERR_SESSION_UNKNOWN',
    401,
    'this node holds no such session for that key (it restarted, or the session ended); agree on new keys with PUT /session',
  );
}

function sessionRequired(): WireError {
  return new WireError(
    'ERR_SESSION_REQUIRED',
    426,
    'this node takes requests in a session only (agree on keys with PUT /session first), so that nothing travels in the clear',
  );
}

/**
 * Runs every signed request, whatever carried it (the node's HTTP server or
 * a proxy's relay): the route, then the one authentication pipeline with a
 * key resolver that knows grants (calls) and peers (pid messages), then the
 * route's handler, which checks mission and rate before any user code. A
 * refusal is a JSON error with a stable code and no stack trace.
 */
export class Dispatcher {
  readonly #deps: DispatcherDeps;
  readonly #grantKey: KeyResolver<GrantKey>;
  readonly #peerKey: KeyResolver<undefined>;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
    this.#grantKey = async (kid) => {
      const epoch = deps.gate.epoch;
      const grant = deps.gate.usable(kid);
      const key = await deps.gate.keyOf(grant);
      return { key, found: { grant, key, epoch } };
    };
    this.#peerKey = (kid) => {
      const key = deps.routes.key(kid);
      if (key === undefined) throw new WireError('ERR_UNKNOWN_KEY', 401, 'no peer is known for this key');
      return { key, found: undefined };
    };
  }

  /** The node's wall clock. */
  get clock(): WallClock {
    return this.#deps.clock;
  }

  /** Checks and runs `method path` with body `jws` (`route`: the path already matched, if it was); never throws. */
  async dispatch(
    method: string,
    path: string,
    jws: string,
    arrival: Arrival = {},
    route = matchRoute(path),
  ): Promise<HttpResponse> {
    try {
      if (route === undefined) throw NOT_FOUND();
      if (method !== 'PUT') throw new WireError('ERR_METHOD_NOT_ALLOWED', 405, 'the apply tree takes PUT only');
      if (isSessionMessage(jws)) return await this.#inSession(path, jws, route, arrival);
      return await underLoad(() => this.#run(method, path, jws, route, arrival));
    } catch (err) {
      return this.refuse(err, path, arrival.source, jws);
    }
  }

  /**
   * The answer for an error: a refusal for a {@link WireError} (noted for
   * the observer with its source and claimed key id, not logged), else a
   * 500 logged as one line (throttled; with the stack only for a fault of
   * this node, not a client's doing).
   */
  refuse(err: unknown, path: string, source?: string, jws?: string): HttpResponse {
    if (err instanceof WireError) {
      this.#deps.refusals.note(err, path, source, jws);
      const res = refusalResponse(err);
      const proof = LOST_PROOF.get(err);
      if (proof === undefined) return res;
      return { ...res, text: JSON.stringify({ ...(JSON.parse(res.text) as object), proof }) };
    }
    this.#deps.log.error('internal', `refused a request to ${path}`, err);
    return refusalResponse(new WireError('ERR_INTERNAL', 500, 'the node failed to handle this request'));
  }

  /**
   * A session's end told so that its caller may believe it: signed by the
   * node key, naming the session and sequence number refused, for a key
   * that is a usable grant here; for any other key, the grant's own refusal
   * (`ERR_GRANT_REVOKED`, `ERR_GRANT_EXPIRED`, `ERR_UNKNOWN_KEY`) instead.
   */
  async #lost(err: WireError, header: SessionHeader): Promise<WireError> {
    const d = this.#deps;
    // A key that is no usable grant here is told why instead (revoked, expired, unknown): that is the news.
    if (!d.gate.isUsable(header.kid)) d.gate.usable(header.kid);
    const claims = newClaims<'reply'>(d.clock, {
      aud: header.kid,
      iss: d.nodeId,
      body: { lost: { sid: header.sid, seq: header.seq, code: err.code } },
    });
    LOST_PROOF.set(err, await d.signReply(claims));
    return err;
  }

  async #run(method: string, path: string, jws: string, route: RouteMatch, arrival: Arrival): Promise<HttpResponse> {
    const d = this.#deps;
    const expected = { aud: d.nodeId, method, path, replay: d.replay, clock: d.clock };
    if (route.kind === 'pid') {
      const { claims, kid } = await authenticate(jws, { ...expected, kind: 'pid', key: this.#peerKey });
      checkRelayedIssuer(claims.iss, arrival);
      if (claims.iss !== d.routes.issuer(kid)) throw wrongIssuer();
      if (d.requireSessions) throw sessionRequired();
      // A grantee's messages spend its grant's rate before they reach a mailbox.
      const grant = d.gate.grantOf(kid);
      if (grant !== undefined) d.gate.takeMessage(grant);
      if (route.name === 'monitor') return answered(d.handlers.monitor({ claims, kid }, route.params));
      return answered(d.handlers.pid({ claims, kid }, route.params));
    }
    const { claims, found, admit } = await authenticate(jws, {
      ...expected,
      kind: 'call',
      key: this.#grantKey,
      admitLater: true,
    });
    checkRelayedIssuer(claims.iss, arrival);
    d.gate.checkIssuer(found.grant, claims.iss);
    if (route.name === 'session') {
      admit();
      return answered(await d.handlers.session({ claims, grant: found.grant, epoch: found.epoch, key: found.key }));
    }
    // Signed requests are the first of a session only, unless encryption is off; batches go in sessions only.
    if (d.requireSessions || route.name === 'batch' || route.name === 'calls') throw sessionRequired();
    if (route.name === 'inbox') {
      admit();
      return answered(
        await d.handlers.inbox({
          claims: claims as unknown as InboxClaims,
          grant: found.grant,
          relayed: arrival.relayed !== undefined,
        }),
      );
    }
    if (route.name === 'probe') {
      admit();
      return answered(await d.handlers.probe({ claims, grant: found.grant, epoch: found.epoch, key: found.key }));
    }
    const request = {
      claims,
      grant: found.grant,
      epoch: found.epoch,
      key: found.key,
      ...(arrival.relayed === undefined ? {} : { replyLink: arrival.relayed.link }),
    };
    // Run at most once: a resend of this id gets the first answer (or is told what became of it).
    return d.answers.once(claims, found.grant.kid, async () => {
      try {
        return answered(
          route.name === 'apply'
            ? await d.handlers.apply(request, route.params)
            : await d.handlers.behaviour(request, route.params),
        );
      } catch (err) {
        return this.refuse(err, path, arrival.source, jws);
      }
    });
  }

  /**
   * A request in a session (a compact JWE): the session its header names,
   * held by this node for that key (`ERR_SESSION_UNKNOWN`), not spent
   * (`ERR_SESSION_EXPIRED`), opened with its key (`ERR_BAD_SIGNATURE`),
   * in its time window (`ERR_STALE`), for this path (`ERR_WRONG_PATH`),
   * from the node it was made with (`ERR_WRONG_ISSUER`), and a sequence
   * number not seen (`ERR_REPLAY`; a resend of a call gets its first
   * answer). Then the same checks as a signed request: the grant read
   * again (revoked: its sessions end here), missions and rate in the
   * handlers, before any user code. The reply is sealed in the session.
   */
  async #inSession(path: string, text: string, route: RouteMatch, arrival: Arrival): Promise<HttpResponse> {
    const d = this.#deps;
    d.sessions.tidy();
    const header = readSessionHeader(text, SESSION_TYP.request);
    const session = d.sessions.get(header.sid);
    if (session === undefined || header.kid !== session.peerKid) throw await this.#lost(unknownSession(), header);
    // A grant that ended ends its sessions: refused here with the grant's own refusal.
    const epoch = d.gate.epoch;
    let grant: GrantRecord | undefined;
    if (session.role === 'server') {
      try {
        grant = d.gate.usable(session.grantKid);
      } catch (err) {
        d.sessions.dropGrant(session.grantKid);
        throw err;
      }
    }
    if (session.spent) {
      if (session.role === 'server') d.sessions.drop(session);
      throw await this.#lost(
        new WireError('ERR_SESSION_EXPIRED', 401, 'this session has ended; agree on new keys with PUT /session'),
        header,
      );
    }
    const request = session.openRequest(header, text);
    checkTime(header, d.clock);
    if (request.path !== path) {
      throw new WireError('ERR_WRONG_PATH', 401, `this message was sealed for PUT ${request.path}, not PUT ${path}`);
    }
    if (arrival.relayed !== undefined && arrival.relayed.from !== session.peerNodeId) throw wrongIssuer();
    const seen = session.admit(header.seq);
    if (seen === 'old') {
      throw new WireError('ERR_REPLAY', 409, 'this sequence number is older than the session still tells apart');
    }
    const base = {
      id: `${session.sid}.${header.seq}`,
      iat: header.iat,
      exp: header.exp,
      aud: d.nodeId,
      iss: session.peerNodeId,
      method: 'PUT' as const,
      path,
    };
    if (route.name === 'batch') {
      const items = parseBatch(request.body);
      const run = async (): Promise<HttpResponse> => {
        const results: BatchResult[] = [];
        for (let i = 0; i < items.length; i++) {
          const item = items[i]!;
          results.push(await this.#batchItem(session, grant, epoch, { ...base, id: `${base.id}.${i}` }, item, arrival));
        }
        // To a grantee, sealed in its session (what became of each item is its business only); back to
        // this node's own callee, as plain JSON (it only logs what was refused).
        if (session.role === 'server') {
          const text = session.sealReply(header.seq, { body: { results } });
          return { status: 200, contentType: 'application/jose', text, retryAfter: undefined };
        }
        return {
          status: 200,
          contentType: 'application/json',
          text: JSON.stringify({ results }),
          retryAfter: undefined,
        };
      };
      if (grant === undefined) {
        if (seen === 'seen') throw new WireError('ERR_REPLAY', 409, 'this message was already received');
        return run();
      }
      return d.answers.inSession(base, grant.kid, seen === 'new', run);
    }
    if (route.name === 'calls') return this.#calls(session, grant, epoch, header, base, request.body, seen, arrival);
    if (route.kind === 'pid') {
      if (seen === 'seen') throw new WireError('ERR_REPLAY', 409, 'this message was already received');
      const claims = { ...base, body: request.body } as PidClaims;
      return answered(this.#pidInSession(session, claims, route));
    }
    // Calls go one way: from the grantee to the node that granted.
    if (grant === undefined || route.name === 'session') {
      throw new WireError('ERR_BAD_REQUEST', 400, 'calls go from the grantee to the node that granted, in its session');
    }
    const key = await d.gate.keyOf(grant);
    const claims: CallClaims = {
      ...base,
      body: request.body as CallClaims['body'],
      ...(request.mission === undefined ? {} : { mission: request.mission }),
      ...(request.cast === true ? { cast: true } : {}),
      ...(request.timeout === undefined ? {} : { timeout: request.timeout }),
      ...(header.deadline === undefined ? {} : { deadline: header.deadline }),
    };
    const seal = (reply: ReplyClaims): string => sealedReply(session, header.seq, reply);
    if (route.name === 'inbox' || route.name === 'probe') {
      if (seen === 'seen') throw new WireError('ERR_REPLAY', 409, 'this message was already received');
      if (route.name === 'inbox') {
        return answered(
          await d.handlers.inbox({
            claims: claims as unknown as InboxClaims,
            grant,
            relayed: arrival.relayed !== undefined,
            seal,
          }),
        );
      }
      return answered(await d.handlers.probe({ claims, grant, epoch, key, seal }));
    }
    const call = {
      claims,
      grant,
      epoch,
      key,
      seal,
      ...(arrival.relayed === undefined ? {} : { replyLink: arrival.relayed.link }),
    };
    return d.answers.inSession(claims, grant.kid, seen === 'new', async () => {
      try {
        return answered(
          route.name === 'apply'
            ? await d.handlers.apply(call, route.params)
            : await d.handlers.behaviour(call, route.params),
        );
      } catch (err) {
        return this.refuse(err, path, arrival.source, text);
      }
    });
  }

  /** A pid message or monitor signal in a session: from a peer that may send them here, spending a grantee's message rate. */
  #pidInSession(session: Session, claims: PidClaims, route: RouteMatch): Answer {
    const d = this.#deps;
    const kid = session.peerKid;
    if (d.routes.issuer(kid) !== session.peerNodeId) {
      throw new WireError('ERR_UNKNOWN_KEY', 401, 'no peer is known for this key');
    }
    const grant = d.gate.grantOf(kid);
    if (grant !== undefined) d.gate.takeMessage(grant);
    if (route.name === 'monitor') return d.handlers.monitor({ claims, kid }, route.params);
    return d.handlers.pid({ claims, kid }, route.params);
  }

  /**
   * One item of a batch, checked and run as it would be on its own (its
   * route, mission, rate, arguments), in the batch's order: a cast, a pid
   * message or a monitor signal. Its refusal is its own; the others go on.
   */
  async #batchItem(
    session: Session,
    grant: GrantRecord | undefined,
    epoch: number,
    base: Omit<CallClaims, 'body'>,
    item: BatchEntry,
    arrival: Arrival,
  ): Promise<BatchResult> {
    const d = this.#deps;
    try {
      const route = matchRoute(item.path);
      if (route === undefined) throw NOT_FOUND();
      if (route.kind === 'pid') {
        return {
          status: this.#pidInSession(session, { ...base, path: item.path, body: item.body } as PidClaims, route).status,
        };
      }
      if (route.name !== 'apply' || item.cast !== true || grant === undefined) {
        throw new WireError('ERR_BAD_REQUEST', 400, 'a batch carries casts and messages to pids only');
      }
      const claims: CallClaims = {
        ...base,
        path: item.path,
        body: item.body as CallClaims['body'],
        cast: true,
        ...(typeof item.mission === 'string' ? { mission: item.mission } : {}),
      };
      const key = await d.gate.keyOf(grant);
      const call = {
        claims,
        grant,
        epoch,
        key,
        inSession: true,
        ...(arrival.relayed === undefined ? {} : { replyLink: arrival.relayed.link }),
      };
      return { status: (await d.handlers.apply(call, route.params)).status };
    } catch (err) {
      return this.#itemRefused(err, item.path, arrival);
    }
  }

  /** What a refused item of a batch or of `PUT /calls` is answered (noted, or logged when it is this node's fault). */
  #itemRefused(err: unknown, path: string, arrival: Arrival): BatchResult {
    const d = this.#deps;
    if (err instanceof WireError) {
      d.refusals.note(err, path, arrival.source);
      return {
        status: err.status,
        code: err.code,
        message: err.message,
        ...(err instanceof RateLimitedError ? { retryAfter: err.retryAfterS } : {}),
      };
    }
    d.log.error('internal', `refused a batched request to ${path}`, err);
    return { status: 500, code: 'ERR_INTERNAL', message: 'the node failed to handle this request' };
  }

  /**
   * `PUT /calls`: several calls from a grantee in its session, straight to
   * this node (a relayed one is refused: its answer could not stream). Each
   * is checked and started as it would be on its own (route, mission,
   * deadline, rate, arguments), in order, before any of its code runs; the
   * answers stream back sealed as they come, and are kept whole for a
   * resend of the request, which gets them all at once.
   */
  async #calls(
    session: Session,
    grant: GrantRecord | undefined,
    epoch: number,
    header: SessionHeader,
    base: Omit<CallClaims, 'body'>,
    body: unknown,
    seen: 'new' | 'seen',
    arrival: Arrival,
  ): Promise<HttpResponse> {
    const d = this.#deps;
    if (grant === undefined || arrival.relayed !== undefined) {
      throw new WireError(
        'ERR_BAD_REQUEST',
        400,
        'PUT /calls goes from the grantee straight to the node that granted, in its session',
      );
    }
    const items = parseCalls(body);
    const key = await d.gate.keyOf(grant);
    const out = new PassThrough();
    out.on('error', () => undefined);
    const start = (item: CallItem, i: number): Promise<CallAnswer> =>
      this.#callItem(grant, epoch, key, { ...base, id: `${base.id}.${i}` }, item, arrival);
    const seal = (f: number, frame: CallsFrame): string => session.sealFrame(header.seq, f, frame);
    const whole = d.answers.inSession(base, grant.kid, seen === 'new', async () => ({
      status: 200,
      contentType: FRAMES_TYPE,
      retryAfter: undefined,
      text: await streamCalls(items, start, seal, out),
    }));
    // A resend gets the frames kept whole; the first copy reads them as they come.
    if (seen !== 'new') return whole;
    whole.catch(() => undefined);
    return { status: 200, contentType: FRAMES_TYPE, retryAfter: undefined, text: '', stream: out };
  }

  /** One call of `PUT /calls`, checked and run as a call on its own; its answer (or refusal) is its own. */
  async #callItem(
    grant: GrantRecord,
    epoch: number,
    key: KeyObject,
    base: Omit<CallClaims, 'body'>,
    item: CallItem,
    arrival: Arrival,
  ): Promise<CallAnswer> {
    const d = this.#deps;
    try {
      const route = matchRoute(item.path);
      if (route === undefined) throw NOT_FOUND();
      if (route.name !== 'apply' && route.name !== 'behaviour') {
        throw new WireError('ERR_BAD_REQUEST', 400, 'PUT /calls carries calls to /apply and /behaviour only');
      }
      const claims: CallClaims = {
        ...base,
        path: item.path,
        body: item.body as CallClaims['body'],
        timeout: item.timeout,
        deadline: item.deadline,
        ...(item.mission === undefined ? {} : { mission: item.mission }),
      };
      let reply: SessionReply | undefined;
      const seal = (r: ReplyClaims): string => {
        reply = { body: r.body, ...(r.idempotent === true ? { idempotent: true } : {}) };
        return '';
      };
      const call = { claims, grant, epoch, key, seal };
      const answer =
        route.name === 'apply'
          ? await d.handlers.apply(call, route.params)
          : await d.handlers.behaviour(call, route.params);
      if (reply === undefined) throw new Error(`a call answered ${answer.status} without a reply`);
      return { status: answer.status, ...reply };
    } catch (err) {
      return this.#itemRefused(err, item.path, arrival);
    }
  }
}

/** A reply's body and flags, sealed in `session` as the answer to request `seq`. */
function sealedReply(session: Session, seq: number, reply: ReplyClaims): string {
  const content: SessionReply = { body: reply.body, ...(reply.idempotent === true ? { idempotent: true } : {}) };
  return session.sealReply(seq, content);
}

/** A handler's answer as the response written. */
function answered({ status, body }: Answer): HttpResponse {
  return { status, contentType: body === undefined ? '' : 'application/jose', text: body ?? '', retryAfter: undefined };
}

/** The address a request came from (an IPv4 address mapped into IPv6 shown as IPv4). */
function sourceOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** A node's HTTP server and the call streams upgraded from it. */
export interface BuiltServer {
  server: Server;
  streams: StreamServer;
}

/**
 * The node's HTTP face: `PUT /apply/<module>/<function>`,
 * `PUT /behaviour/<mission>/<name>/<op>` and `PUT /pid/<id>`, behind a
 * {@link ConnectionGuard}. The route is matched and the body read (size,
 * type) before anything else; the rest is the {@link Dispatcher}'s. A
 * request cut off before its body was in, and a connection the guard
 * closes, are one line each in `log`. `PUT /stream` upgrades to a stream of
 * calls (see {@link StreamServer}), each line run by the same dispatcher.
 */
export async function buildServer(
  dispatcher: Dispatcher,
  limits: ServerLimits,
  log: LogThrottle,
  name: string,
): Promise<BuiltServer> {
  // Loaded on the first listen, not with the node: a node that only joins a
  // proxy never serves HTTP, and Koa is a few MB of a Raspberry Pi's memory.
  const { default: Koa } = await import('koa');
  const app = new Koa();
  app.use(async (ctx) => {
    let answer: HttpResponse;
    const route = matchRoute(ctx.path);
    try {
      if (route === undefined) throw NOT_FOUND();
      if (ctx.method !== 'PUT') throw new WireError('ERR_METHOD_NOT_ALLOWED', 405, 'the apply tree takes PUT only');
      const jws = await readJwsBody(ctx.req, limits.maxBodyBytes);
      answer = await dispatcher.dispatch(ctx.method, ctx.path, jws, { source: sourceOf(ctx.req) }, route);
    } catch (err) {
      if (!(err instanceof WireError)) {
        log.error(
          'aborted',
          `node ${name}: a request to ${ctx.path} from ${ctx.req.socket.remoteAddress} was cut off`,
          err,
        );
      }
      answer = refusalResponse(
        err instanceof WireError ? err : new WireError('ERR_BAD_REQUEST', 400, 'the request could not be read'),
      );
    }
    ctx.status = answer.status;
    if (answer.retryAfter !== undefined) ctx.set('Retry-After', answer.retryAfter);
    if (answer.contentType !== '') {
      ctx.type = answer.contentType;
      ctx.body = answer.stream ?? answer.text;
    }
  });
  app.silent = true;

  const guard = ConnectionGuard.serve(app.callback(), limits, (r) =>
    log.line('connection', `node ${name}: ${r.message}`),
  );
  const streams = new StreamServer(guard.server, {
    dispatch: (path, text, source) => dispatcher.dispatch('PUT', path, text, { source }),
    clock: dispatcher.clock,
    maxBodyBytes: limits.maxBodyBytes,
    idleMs: limits.idleTimeoutMs,
    hold: (socket) => guard.hold(socket),
    onEvict: (socket, evict) => guard.onEvict(socket, evict),
    log: (message) => log.line('stream', `node ${name}: ${message}`),
  });
  return { server: guard.server, streams };
}
