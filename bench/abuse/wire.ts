/**
 * Hand-made WTD requests for the abuse suite: keys, signatures, claims,
 * encoded arguments and HTTP from a chosen loopback address. Written against
 * the wire format, not with lib's client, which would not send what an
 * attacker sends (a foreign `addr`, another node's `iss`, a forged relay).
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign as edSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { Agent, request } from 'node:http';
import { systemWallClock } from '../../lib/runtime/clock.js';
import { clientSession, type Session } from '../../lib/security/sessions.js';
import { newEphemeral, readSessionHeader, SESSION_TYP } from '../../lib/wire/session.js';
import type { SessionOffer } from '../../lib/wire/claims.js';

/** Where the attacker's sockets come from. */
export const ATTACKER = '127.0.0.2';
/** Where the honest callers' sockets come from. */
export const HONEST = '127.0.0.1';
/** A third machine: nobody should ever connect to it on a request's say-so. */
export const THIRD = '127.0.0.3';

/** The JWS `typ` of each kind of message. */
export const TYP = {
  call: 'wtd-call+jws',
  reply: 'wtd-reply+jws',
  pid: 'wtd-pid+jws',
  proxy: 'wtd-proxy+jws',
} as const;

/** An Ed25519 key as WTD names it: `kid` is the RFC 7638 thumbprint, `id` the node id made from it. */
export interface RawKey {
  privateKey: KeyObject;
  publicJwk: { kty: 'OKP'; crv: 'Ed25519'; x: string };
  kid: string;
  id: string;
}

/** The RFC 7638 thumbprint of an Ed25519 public key. */
export function thumbprint(x: string): string {
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
}

export function newRawKey(): RawKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  const kid = thumbprint(x);
  return { privateKey, publicJwk: { kty: 'OKP', crv: 'Ed25519', x }, kid, id: kid.slice(0, 16) };
}

/** The key of a grant file (its `kid` is the grant's, as the node stored it). */
export function grantKey(grant: { kid: string; privateJwk: unknown }): RawKey {
  const jwk = grant.privateJwk as { x: string; d: string };
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, format: 'jwk' });
  return {
    privateKey,
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x },
    kid: grant.kid,
    id: grant.kid.slice(0, 16),
  };
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A compact JWS of `claims` under any header at all. */
export function signJws(key: KeyObject, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64({ alg: 'EdDSA', ...header })}.${b64(claims)}`;
  return `${input}.${edSign(null, Buffer.from(input), key).toString('base64url')}`;
}

/** A string shaped like a JWS (header, claims, 64 bytes of "signature") that nobody signed. */
export function fakeJws(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${b64({ alg: 'EdDSA', ...header })}.${b64(claims)}.${randomBytes(64).toString('base64url')}`;
}

/** A fresh 128-bit message id. */
export function messageId(): string {
  return randomBytes(16).toString('base64url');
}

/** Claims of a request to `path`, valid for `ttlS` seconds from now, with any extra fields. */
export function requestClaims(
  fields: { aud: string; iss: string; path: string; body: unknown } & Record<string, unknown>,
  ttlS = 60,
): Record<string, unknown> {
  const iat = Math.floor(Date.now() / 1000);
  return { id: messageId(), iat, exp: iat + ttlS, method: 'PUT', ...fields };
}

/** A pid as it travels. */
export interface Billet {
  node: string;
  id: number;
  token: string;
}

/**
 * Arguments as the wire codec encodes them (superjson): plain JSON, and the
 * positions of `pids` marked as pids, as `WireCodec` marks them.
 */
export function encodeArgs(args: unknown[], pids: number[] = []): { json: unknown; meta?: unknown } {
  if (pids.length === 0) return { json: args };
  const values: Record<string, unknown> = {};
  for (const i of pids) values[String(i)] = [['custom', 'wtd.pid']];
  return { json: args, meta: { values, v: 1 } };
}

/** The claims of a JWS, read without verifying it. */
export function peek(jws: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** What came back: the status (0 when the request failed), the body, the WTD error code if any, the time taken. */
export interface RawResponse {
  status: number;
  text: string;
  code: string | undefined;
  ms: number;
  /** Bytes of body received (counted even when the body is not kept). */
  bytes: number;
  /** Why the request failed, when status is 0: a socket error code, or 'timeout'. */
  failure?: string;
}

/** Options of one request. */
export interface RawRequestOptions {
  method?: 'PUT' | 'GET';
  body?: string;
  contentType?: string;
  timeoutMs?: number;
  /** On a connection of its own (not a kept-alive one), as a newcomer would. */
  fresh?: boolean;
  /** Count the body's bytes without keeping them (a 16 MB directory, say). */
  discardBody?: boolean;
}

/** HTTP from one source address, with its own pool of kept-alive sockets. */
export class RawHttp {
  readonly source: string;
  readonly #agent: Agent;

  constructor(source: string, maxSockets = 64) {
    this.source = source;
    this.#agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** Never rejects: a failure is status 0 with its reason. */
  request(url: string, options: RawRequestOptions = {}): Promise<RawResponse> {
    const started = performance.now();
    const body = options.body ?? '';
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: Omit<RawResponse, 'ms'>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...r, ms: performance.now() - started });
      };
      const req = request(
        url,
        {
          method: options.method ?? 'PUT',
          agent: options.fresh === true ? false : this.#agent,
          localAddress: this.source,
          headers:
            options.method === 'GET'
              ? {}
              : {
                  'content-type': options.contentType ?? 'application/jose',
                  'content-length': Buffer.byteLength(body),
                },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            if (options.discardBody !== true) chunks.push(c);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            done({ status: res.statusCode ?? 0, text, code: errorCode(text), bytes });
          });
          res.on('error', (err: NodeJS.ErrnoException) =>
            done({ status: 0, text: '', code: undefined, bytes, failure: err.code ?? err.message }),
          );
        },
      );
      const timer = setTimeout(() => {
        done({ status: 0, text: '', code: undefined, bytes: 0, failure: 'timeout' });
        req.destroy();
      }, options.timeoutMs ?? 5000);
      req.on('error', (err: NodeJS.ErrnoException) =>
        done({ status: 0, text: '', code: undefined, bytes: 0, failure: err.code ?? err.message }),
      );
      req.end(options.method === 'GET' ? undefined : body);
    });
  }

  put(url: string, jws: string, timeoutMs = 5000): Promise<RawResponse> {
    return this.request(url, { body: jws, timeoutMs });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function errorCode(text: string): string | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    return (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** A signed call as a grantee makes it, with any claims at all added (`addr`, another `iss`, ...). */
export function signedCall(
  key: RawKey,
  to: { aud: string; iss: string },
  path: string,
  args: { json: unknown; meta?: unknown },
  extra: Record<string, unknown> = {},
): string {
  return signJws(key.privateKey, { typ: TYP.call, kid: key.kid }, requestClaims({ ...to, path, body: args, ...extra }));
}

/** What a signed reply carries, read without verifying: the result's JSON, or the error code. */
export function replyOf(text: string): { ok?: unknown; error?: string } {
  try {
    const body = peek(text).body as { ok?: { json: unknown }; error?: { code: string } } | undefined;
    if (body?.error !== undefined) return { error: body.error.code };
    return { ok: body?.ok?.json };
  } catch {
    return { error: errorCode(text) ?? 'unreadable' };
  }
}

/** A proxy's id, from `GET /id`. */
export async function proxyId(http: RawHttp, url: string): Promise<string> {
  const res = await http.request(`${url}/id`, { method: 'GET' });
  return (JSON.parse(res.text) as { id: string }).id;
}

/**
 * A registration at a proxy driven by hand: register, ping and poll signed
 * with its own key, whatever the bodies say.
 */
export class RawProxyClient {
  constructor(
    readonly http: RawHttp,
    readonly url: string,
    readonly proxyId: string,
    readonly key: RawKey,
  ) {}

  get id(): string {
    return this.key.id;
  }

  /** Registers a new key (or `key`) with `email` and `name`; the response says whether the proxy took it. */
  static async register(
    http: RawHttp,
    proxy: { url: string; id: string },
    email: string,
    name: string,
    key: RawKey = newRawKey(),
  ): Promise<{ client: RawProxyClient; res: RawResponse }> {
    const client = new RawProxyClient(http, proxy.url, proxy.id, key);
    const res = await client.put('/register', { email, name, publicJwk: key.publicJwk });
    return { client, res };
  }

  jws(path: string, body: unknown): string {
    return signJws(
      this.key.privateKey,
      { typ: TYP.proxy, kid: this.key.kid },
      requestClaims({ aud: this.proxyId, iss: this.key.id, path, body }),
    );
  }

  put(path: string, body: unknown, options: Omit<RawRequestOptions, 'body'> = {}): Promise<RawResponse> {
    return this.http.request(`${this.url}${path}`, { ...options, body: this.jws(path, body) });
  }

  ping(
    body: { name?: string; missions?: string[]; grants?: string[]; address?: string | null },
    options: Omit<RawRequestOptions, 'body'> = {},
  ): Promise<RawResponse> {
    return this.put(
      `/nodes/${this.id}/ping`,
      { name: 'raw', missions: [], grants: [], address: null, ...body },
      options,
    );
  }

  /** Polls: acknowledges `ack`, sends `messages` (each `{ id, kind, to, ... }`), brings back what waited. */
  async poll(
    body: { ack?: string[]; messages?: unknown[] },
    options: Omit<RawRequestOptions, 'body'> = {},
  ): Promise<{ res: RawResponse; results: { id: string; error?: { code: string } }[]; messages: RelayedIn[] }> {
    const res = await this.put(
      `/nodes/${this.id}/poll`,
      { ack: [], messages: [], ...body },
      { timeoutMs: 30_000, ...options },
    );
    if (res.status !== 200) return { res, results: [], messages: [] };
    const json = JSON.parse(res.text) as { results?: []; messages?: RelayedIn[] };
    return { res, results: json.results ?? [], messages: json.messages ?? [] };
  }
}

/** A message a poll brought. */
export interface RelayedIn {
  id: string;
  kind: 'request' | 'response';
  from: string;
  path?: string;
  jws?: string;
  re?: string;
  status?: number;
  text?: string;
}

/**
 * A session made by hand (as any caller, honest or not, must make one with
 * a node whose encryption is on): `PUT /session` signed with `key` as node
 * `iss`, then requests sealed in it and their replies opened. Built on
 * lib's session primitives, which are the wire format.
 */
export class RawSession {
  readonly #session: Session;
  readonly #url: string;

  private constructor(session: Session, url: string) {
    this.#session = session;
    this.#url = url;
  }

  /** The first request of a session with the node at `url`, over `http` (on a fresh connection with `fresh`). */
  static async open(
    http: RawHttp,
    node: { url: string; id: string },
    key: RawKey,
    iss: string,
    options: { fresh?: boolean; timeoutMs?: number } = {},
  ): Promise<RawSession> {
    const mine = newEphemeral();
    const jws = signJws(
      key.privateKey,
      { typ: TYP.call, kid: key.kid },
      requestClaims({ aud: node.id, iss, path: '/session', body: { epk: mine.publicKey } }),
    );
    const res = await http.request(`${node.url}/session`, { body: jws, ...options });
    if (res.status !== 200) throw new Error(`the first request of a session was refused: ${res.code ?? res.status}`);
    const offer = (peek(res.text).body as { session: SessionOffer }).session;
    const session = clientSession({
      mine,
      offer,
      client: iss,
      server: node.id,
      grantKid: key.kid,
      peerKid: 'the-node',
      clock: systemWallClock,
      expiresAt: Number.MAX_SAFE_INTEGER,
      budget: Number.MAX_SAFE_INTEGER,
    });
    return new RawSession(session, node.url);
  }

  /** A request for `path` sealed in the session (any extra fields ride in its sealed content), and its number. */
  seal(path: string, body: unknown, extra: Record<string, unknown> = {}): { text: string; seq: number } {
    return this.#session.sealRequest({ path, body, ...extra });
  }

  /**
   * PUTs several calls in one sealed `PUT /calls` and reads the frames of
   * its answer: each call's status and refusal code (undefined answers
   * when the request was refused whole, or a frame did not open).
   */
  async calls(
    http: RawHttp,
    items: unknown[],
    options: RawRequestOptions = {},
  ): Promise<{ res: RawResponse; answers: { status: number; code?: string }[] | undefined }> {
    const { text, seq } = this.seal('/calls', { items });
    const res = await http.request(`${this.#url}/calls`, { timeoutMs: 10_000, ...options, body: text });
    if (res.status !== 200) return { res, answers: undefined };
    try {
      const answers = res.text
        .split('\n')
        .filter((line) => line.length > 0)
        .flatMap((line, f) => {
          const frame = this.#session.openFrame(seq, f, readSessionHeader(line, SESSION_TYP.frame), line) as {
            results: [number, { status: number; code?: string }][];
          };
          return frame.results.map(([, answer]) => answer);
        });
      return { res, answers };
    } catch {
      return { res, answers: undefined };
    }
  }

  /** PUTs a sealed call to `path` and reads its answer: the result's JSON or the error code, as {@link replyOf} does. */
  async call(
    http: RawHttp,
    path: string,
    body: unknown,
    options: RawRequestOptions = {},
  ): Promise<{ res: RawResponse; reply: { ok?: unknown; error?: string } | undefined }> {
    const { text, seq } = this.seal(path, body);
    const res = await http.request(`${this.#url}${path}`, { ...options, body: text });
    if (res.status !== 200) return { res, reply: undefined };
    try {
      const opened = this.#session.openReply(seq, readSessionHeader(res.text, SESSION_TYP.reply), res.text);
      const b = opened.body as { ok?: { json: unknown }; error?: { code: string } };
      return { res, reply: b.error !== undefined ? { error: b.error.code } : { ok: b.ok?.json } };
    } catch {
      return { res, reply: { error: 'unreadable' } };
    }
  }
}
