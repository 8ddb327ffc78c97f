import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { KeyObject } from 'node:crypto';
import Koa from 'koa';
import { WireError, WtdError } from '../errors.js';
import type { GrantRecord } from '../security/grant-store.js';
import { usableGrant } from '../security/grants.js';
import { importPublic } from '../security/keys.js';
import {
  MESSAGE_TTL_S,
  checkClaims,
  readKid,
  underLoad,
  verify,
  type Claims,
  type MessageKind,
} from '../wire/envelope.js';
import type { Encoded } from '../wire/codec.js';
import type { HttpResponse } from './http-client.js';
import type { Link } from './link.js';
import type { WtdNode } from './wtd-node.js';

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

/** What the checks established about an authenticated request. */
export interface Verified {
  claims: Claims;
  /** The grant the request came under (calls), if any. */
  grant: GrantRecord | undefined;
  kid: string;
  /** For a relayed request: how to reach its sender (pid messages go back this way). */
  replyLink?: Link;
}

/** The operation a checked request asks for, run by the node once every check passed. */
export type Handler = (v: Verified, params: Record<string, string>) => Promise<{ status: number; body?: string }>;

/** Reads the body as text, refusing (413) as soon as it passes `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new WireError('ERR_TOO_LARGE', 413, `the body is over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new WireError('ERR_TOO_LARGE', 413, `the body is over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A rate-limit refusal that carries its Retry-After. */
export class RateLimitedError extends WireError {
  constructor(readonly retryAfterS: number) {
    super('ERR_RATE_LIMITED', 429, `over the grant's rate; retry in ${retryAfterS} s`);
  }
}

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
    const raw = parts[i + 2]!;
    let value: string;
    try {
      value = decodeURIComponent(raw);
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

/**
 * Runs the checks every signed request passes, whatever carried it (the
 * node's HTTP server or a proxy's relay), then its handler: JWS shape, key
 * (401/403), signature, audience and path, time window, replay (409), then
 * the route's own mission and rate checks, all before any user code. A
 * refusal is a JSON error with a stable code and no stack trace.
 */
export class Dispatcher {
  readonly #wtd: WtdNode;
  readonly #handlers: Record<RouteMatch['name'], Handler>;
  // Keys of grantees and peers, imported once.
  readonly #keys = new Map<string, KeyObject>();

  constructor(wtd: WtdNode, handlers: Record<RouteMatch['name'], Handler>) {
    this.#wtd = wtd;
    this.#handlers = handlers;
  }

  /** Checks and runs `PUT path` with body `jws` (`route`: the path already matched, if it was); never throws. */
  async dispatch(
    method: string,
    path: string,
    jws: string,
    arrival: Arrival = {},
    route = matchRoute(path),
  ): Promise<HttpResponse> {
    try {
      if (route === undefined) {
        throw new WireError('ERR_NOT_FOUND', 404, 'no such route; use PUT /apply, /behaviour or /pid');
      }
      if (method !== 'PUT') throw new WireError('ERR_METHOD_NOT_ALLOWED', 405, 'the apply tree takes PUT only');
      const { status, body } = await underLoad(async () =>
        this.#handlers[route.name](await this.#check(method, path, jws, route.kind, arrival), route.params),
      );
      return {
        status,
        contentType: body === undefined ? '' : 'application/jose',
        text: body ?? '',
        retryAfter: undefined,
      };
    } catch (err) {
      if (err instanceof WireError) {
        this.#wtd._noteRefusal(err, path);
        return refusalOf(err);
      }
      this.#wtd.logger.error(`refused a request: ${(err as Error).message}`, err);
      return refusalOf(new WireError('ERR_INTERNAL', 500, 'the node failed to handle this request'));
    }
  }

  async #keyOf(kid: string, jwk: GrantRecord['publicJwk']): Promise<KeyObject> {
    let key = this.#keys.get(kid);
    if (key === undefined) {
      key = (await importPublic(jwk)).key;
      this.#keys.set(kid, key);
    }
    return key;
  }

  async #check(method: string, path: string, jws: string, kind: MessageKind, arrival: Arrival): Promise<Verified> {
    const wtd = this.#wtd;
    const kid = readKid(jws, kind);
    let grant: GrantRecord | undefined;
    let key: KeyObject;
    if (kind === 'call') {
      grant = usableGrant(wtd.store.getGrant(kid), Date.now());
      key = await this.#keyOf(kid, grant.publicJwk);
    } else {
      const peer = wtd._peerKey(kid);
      if (peer === undefined) throw new WireError('ERR_UNKNOWN_KEY', 401, 'no peer is known for this key');
      key = peer;
    }
    const claims = await verify(jws, key);
    const nowS = Math.floor(Date.now() / 1000);
    checkClaims(claims, { aud: wtd.id, method, path, nowS });
    if (!wtd.store.remember(claims.id, claims.exp + MESSAGE_TTL_S)) {
      throw new WireError('ERR_REPLAY', 409, 'this message was already received');
    }
    const verified: Verified = { claims, grant, kid };
    if (arrival.relayedFrom !== undefined) verified.replyLink = arrival.relayedFrom(claims.iss);
    return verified;
  }
}

/** A refusal as an answer: JSON `{ error: { code, message } }`, with `Retry-After` when rate limited. */
export function refusalOf(err: WireError): HttpResponse {
  return {
    status: err.status,
    contentType: 'application/json',
    retryAfter: err instanceof RateLimitedError ? String(err.retryAfterS) : undefined,
    text: JSON.stringify({ error: { code: err.code, message: err.message } }),
  };
}

/**
 * The node's HTTP face: `PUT /apply/<module>/<function>`,
 * `PUT /behaviour/<mission>/<name>/<op>` and `PUT /pid/<id>`. Size (413)
 * and content type (415) are checked before the body is read; the rest is
 * the {@link Dispatcher}'s.
 */
export function buildServer(dispatcher: Dispatcher, limits: ServerLimits): Server {
  const app = new Koa();
  app.use(async (ctx) => {
    let answer: HttpResponse;
    try {
      const req = ctx.req;
      const route = matchRoute(ctx.path);
      if (route === undefined) {
        throw new WireError('ERR_NOT_FOUND', 404, 'no such route; use PUT /apply, /behaviour or /pid');
      }
      if (ctx.method !== 'PUT') throw new WireError('ERR_METHOD_NOT_ALLOWED', 405, 'the apply tree takes PUT only');
      if (Number(req.headers['content-length'] ?? '0') > limits.maxBodyBytes) {
        throw new WireError('ERR_TOO_LARGE', 413, `the body is over ${limits.maxBodyBytes} bytes`);
      }
      if (req.headers['content-encoding'] !== undefined && req.headers['content-encoding'] !== 'identity') {
        throw new WireError('ERR_UNSUPPORTED_MEDIA', 415, 'compressed bodies are not accepted');
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/jose') {
        throw new WireError(
          'ERR_UNSUPPORTED_MEDIA',
          415,
          'the body must be a compact JWS with content type application/jose',
        );
      }
      const jws = await readBody(req, limits.maxBodyBytes);
      answer = await dispatcher.dispatch(ctx.method, ctx.path, jws, {}, route);
    } catch (err) {
      answer = refusalOf(
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

/** Decodes a request's encoded payload or refuses with 400. */
export function payloadOf(claims: Claims): Encoded {
  const body = claims.body as Encoded | undefined;
  if (body === null || typeof body !== 'object' || !('json' in body)) {
    throw new WireError('ERR_BAD_ARGUMENTS', 400, 'the request carries no encoded body');
  }
  return body;
}

/** Makes a WtdError safe to send back: code and message, nothing else. */
export function errorBody(err: unknown): { code: string; message: string } {
  if (err instanceof WtdError) return { code: err.code, message: err.message };
  return { code: 'ERR_REMOTE_EXCEPTION', message: err instanceof Error ? err.message : String(err) };
}
