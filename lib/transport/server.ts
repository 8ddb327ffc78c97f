import type { IncomingMessage, Server } from 'node:http';
import type { KeyObject } from 'node:crypto';
import Koa from 'koa';
import { WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import type { LogThrottle } from '../runtime/log-throttle.js';
import { authenticate, type KeyResolver } from '../security/authenticate.js';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../security/connection-guard.js';
import type { GrantGate } from '../security/grant-gate.js';
import type { GrantRecord } from '../security/grant-store.js';
import type { ReplayWindow } from '../security/replay-window.js';
import type { InboxClaims, MessageKind } from '../wire/claims.js';
import { underLoad } from '../wire/envelope.js';
import { readJwsBody } from '../wire/request-body.js';
import type { Answers } from './answers.js';
import type { Answer, RequestHandlers } from './handlers.js';
import type { HttpResponse } from './http-client.js';
import type { Link } from './link.js';
import type { PidRoutes } from './pid-routes.js';
import type { RefusalLog } from './refusal-log.js';
import { refusalResponse } from './refusals.js';

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
  name: 'apply' | 'behaviour' | 'pid' | 'inbox' | 'monitor' | 'probe';
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
];

/** Matches `/apply/<module>/<function>`, `/behaviour/<mission>/<name>/<op>`, `/pid/<id>`, `/inbox` or `/probe`; undefined otherwise. */
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
}

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
  new WireError('ERR_NOT_FOUND', 404, 'no such route; use PUT /apply, /behaviour, /pid, /monitor or /inbox');

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
      return refusalResponse(err);
    }
    this.#deps.log.error('internal', `refused a request to ${path}`, err);
    return refusalResponse(new WireError('ERR_INTERNAL', 500, 'the node failed to handle this request'));
  }

  async #run(method: string, path: string, jws: string, route: RouteMatch, arrival: Arrival): Promise<HttpResponse> {
    const d = this.#deps;
    const expected = { aud: d.nodeId, method, path, replay: d.replay, clock: d.clock };
    if (route.kind === 'pid') {
      const { claims, kid } = await authenticate(jws, { ...expected, kind: 'pid', key: this.#peerKey });
      checkRelayedIssuer(claims.iss, arrival);
      if (claims.iss !== d.routes.issuer(kid)) throw wrongIssuer();
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

/**
 * The node's HTTP face: `PUT /apply/<module>/<function>`,
 * `PUT /behaviour/<mission>/<name>/<op>` and `PUT /pid/<id>`, behind a
 * {@link ConnectionGuard}. The route is matched and the body read (size,
 * type) before anything else; the rest is the {@link Dispatcher}'s. A
 * request cut off before its body was in, and a connection the guard
 * closes, are one line each in `log`.
 */
export function buildServer(dispatcher: Dispatcher, limits: ServerLimits, log: LogThrottle, name: string): Server {
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
      ctx.body = answer.text;
    }
  });
  app.silent = true;

  return ConnectionGuard.serve(app.callback(), limits, (r) => log.line('connection', `node ${name}: ${r.message}`))
    .server;
}
