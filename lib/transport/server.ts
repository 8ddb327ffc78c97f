import { createServer, type Server } from 'node:http';
import type { KeyObject } from 'node:crypto';
import Koa from 'koa';
import { WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/node.js';
import { authenticate, type KeyResolver } from '../security/authenticate.js';
import type { GrantGate } from '../security/grant-gate.js';
import type { GrantRecord } from '../security/grant-store.js';
import type { ReplayWindow } from '../security/replay-window.js';
import type { MessageKind } from '../wire/claims.js';
import { underLoad } from '../wire/envelope.js';
import { readJwsBody } from '../wire/request-body.js';
import type { Answer, RequestHandlers } from './handlers.js';
import type { HttpResponse } from './http-client.js';
import type { Link } from './link.js';
import type { PidRoutes } from './pid-routes.js';
import type { RefusalLog } from './refusal-log.js';
import { refusalResponse } from './refusals.js';

/**
 * Limits of the hardened server.
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', limits: { maxConnections: 64 } });
 * ```
 */
export interface ServerLimits {
  /** Largest request body, in bytes. Default 64 KiB. */
  maxBodyBytes: number;
  /** Most simultaneous connections. Default 256. */
  maxConnections: number;
  /** Time to receive a whole request, in ms. Default 10 s. */
  requestTimeoutMs: number;
  /** Time to receive the headers, in ms. Default 5 s. */
  headersTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxBodyBytes: 64 * 1024,
  maxConnections: 256,
  requestTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
};

/** A route of the apply tree, matched from a request path. */
export interface RouteMatch {
  name: 'apply' | 'behaviour' | 'pid';
  kind: MessageKind;
  params: Record<string, string>;
}

const ROUTES: { name: RouteMatch['name']; kind: MessageKind; keys: string[] }[] = [
  { name: 'apply', kind: 'call', keys: ['module', 'fn'] },
  { name: 'behaviour', kind: 'call', keys: ['mission', 'name', 'op'] },
  { name: 'pid', kind: 'pid', keys: ['id'] },
];

/** Matches `/apply/<module>/<function>`, `/behaviour/<mission>/<name>/<op>` or `/pid/<id>`; undefined otherwise. */
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
  /** Set when the request came through a proxy: how to reach its sender the same way. */
  relayedFrom?: (nodeId: string) => Link;
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
  refusals: RefusalLog;
  logger: Logger;
}

const NOT_FOUND = (): WireError =>
  new WireError('ERR_NOT_FOUND', 404, 'no such route; use PUT /apply, /behaviour or /pid');

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
      const { status, body } = await underLoad(() => this.#run(method, path, jws, route, arrival));
      return {
        status,
        contentType: body === undefined ? '' : 'application/jose',
        text: body ?? '',
        retryAfter: undefined,
      };
    } catch (err) {
      return this.refuse(err, path, jws);
    }
  }

  /** The answer for an error: a refusal for a {@link WireError} (noted for the observer), else a 500 logged once. */
  refuse(err: unknown, path: string, jws?: string): HttpResponse {
    if (err instanceof WireError) {
      this.#deps.refusals.note(err, path, jws);
      return refusalResponse(err);
    }
    this.#deps.logger.error(`refused a request: ${(err as Error).message}`, err);
    return refusalResponse(new WireError('ERR_INTERNAL', 500, 'the node failed to handle this request'));
  }

  async #run(method: string, path: string, jws: string, route: RouteMatch, arrival: Arrival): Promise<Answer> {
    const d = this.#deps;
    const expected = { aud: d.nodeId, method, path, replay: d.replay, clock: d.clock };
    if (route.kind === 'pid') {
      const { claims, kid } = await authenticate(jws, { ...expected, kind: 'pid', key: this.#peerKey });
      return d.handlers.pid({ claims, kid }, route.params);
    }
    const { claims, found } = await authenticate(jws, { ...expected, kind: 'call', key: this.#grantKey });
    const request = {
      claims,
      grant: found.grant,
      epoch: found.epoch,
      key: found.key,
      ...(arrival.relayedFrom === undefined ? {} : { replyLink: arrival.relayedFrom(claims.iss) }),
    };
    return route.name === 'apply'
      ? d.handlers.apply(request, route.params)
      : d.handlers.behaviour(request, route.params);
  }
}

/**
 * The node's HTTP face: `PUT /apply/<module>/<function>`,
 * `PUT /behaviour/<mission>/<name>/<op>` and `PUT /pid/<id>`. The route is
 * matched and the body read (size, type) before anything else; the rest is
 * the {@link Dispatcher}'s.
 */
export function buildServer(dispatcher: Dispatcher, limits: ServerLimits): Server {
  const app = new Koa();
  app.use(async (ctx) => {
    let answer: HttpResponse;
    const route = matchRoute(ctx.path);
    try {
      if (route === undefined) throw NOT_FOUND();
      if (ctx.method !== 'PUT') throw new WireError('ERR_METHOD_NOT_ALLOWED', 405, 'the apply tree takes PUT only');
      const jws = await readJwsBody(ctx.req, limits.maxBodyBytes);
      answer = await dispatcher.dispatch(ctx.method, ctx.path, jws, {}, route);
    } catch (err) {
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

  const server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    app.callback(),
  );
  server.maxConnections = limits.maxConnections;
  server.maxHeadersCount = 64;
  return server;
}
