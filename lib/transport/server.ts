import { createServer, type IncomingMessage, type Server } from 'node:http';
import Router from '@koa/router';
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
import type { WtdNode } from './wtd-node.js';

/** Limits of the hardened server. */
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
}

/** The operation a checked request asks for, run by the node once every check passed. */
export type Handler = (v: Verified, params: Record<string, string>) => Promise<{ status: number; body?: string }>;

function refusal(ctx: Koa.Context, err: WireError): void {
  ctx.status = err.status;
  ctx.type = 'application/json';
  if (err.code === 'ERR_RATE_LIMITED' && typeof (err as { retryAfterS?: number }).retryAfterS === 'number') {
    ctx.set('Retry-After', String((err as { retryAfterS?: number }).retryAfterS));
  }
  ctx.body = JSON.stringify({ error: { code: err.code, message: err.message } });
}

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

/**
 * The node's HTTP face: `PUT /apply/<module>/<function>`,
 * `PUT /behaviour/<mission>/<name>/<op>` and `PUT /pid/<id>`.
 *
 * Every request passes the same checks, cheapest first and all before any
 * user code: size (413), content type (415), JWS shape, key (401/403),
 * signature, audience and path, time window, replay (409), then the
 * route's own mission and rate checks. A refusal is a JSON error with a
 * stable code and no stack trace.
 */
export function buildServer(
  wtd: WtdNode,
  handlers: Record<'apply' | 'behaviour' | 'pid', Handler>,
  limits: ServerLimits,
): Server {
  const app = new Koa();
  const router = new Router();
  // Keys of grantees and peers, imported once.
  const keys = new Map<string, KeyObject>();

  async function keyOf(jwkOwner: { kid: string; jwk: GrantRecord['publicJwk'] }): Promise<KeyObject> {
    let key = keys.get(jwkOwner.kid);
    if (key === undefined) {
      key = (await importPublic(jwkOwner.jwk)).key;
      keys.set(jwkOwner.kid, key);
    }
    return key;
  }

  async function check(ctx: Koa.Context, kind: MessageKind): Promise<Verified> {
    const req = ctx.req;
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
    const kid = readKid(jws, kind);
    let grant: GrantRecord | undefined;
    let key: KeyObject;
    if (kind === 'call') {
      grant = usableGrant(wtd.store.getGrant(kid), Date.now());
      key = await keyOf({ kid, jwk: grant.publicJwk });
    } else {
      const peer = wtd._peerKey(kid);
      if (peer === undefined) throw new WireError('ERR_UNKNOWN_KEY', 401, 'no peer is known for this key');
      key = peer;
    }
    const claims = await verify(jws, key);
    const nowS = Math.floor(Date.now() / 1000);
    checkClaims(claims, { aud: wtd.id, method: ctx.method, path: ctx.path, nowS });
    if (!wtd.store.remember(claims.id, claims.exp + MESSAGE_TTL_S)) {
      throw new WireError('ERR_REPLAY', 409, 'this message was already received');
    }
    return { claims, grant, kid };
  }

  const route =
    (kind: MessageKind, handler: Handler) =>
    async (ctx: Koa.ParameterizedContext & { params: Record<string, string> }): Promise<void> => {
      try {
        const { status, body } = await underLoad(async () =>
          handler(await check(ctx, kind), ctx.params as Record<string, string>),
        );
        ctx.status = status;
        if (body !== undefined) {
          ctx.type = 'application/jose';
          ctx.body = body;
        }
      } catch (err) {
        if (err instanceof WireError) return refusal(ctx, err);
        wtd.logger.error(`refused a request: ${(err as Error).message}`, err);
        refusal(ctx, new WireError('ERR_INTERNAL', 500, 'the node failed to handle this request'));
      }
    };

  router.put('/apply/:module/:fn', route('call', handlers.apply));
  router.put('/behaviour/:mission/:name/:op', route('call', handlers.behaviour));
  router.put('/pid/:id', route('pid', handlers.pid));
  app.use(async (ctx, next) => {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      refusal(ctx, new WireError('ERR_NOT_FOUND', 404, 'no such route; use PUT /apply, /behaviour or /pid'));
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));
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
