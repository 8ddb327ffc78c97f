import { randomBytes, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { WireError } from '../errors.js';
import { signNow, verifyNow } from './ed25519.js';

/** The kinds of signed message, each with its own JWS `typ`. */
export const TYP = Object.freeze({
  call: 'wtd-call+jws',
  reply: 'wtd-reply+jws',
  pid: 'wtd-pid+jws',
  proxy: 'wtd-proxy+jws',
});

/** A message kind, the key of {@link TYP}. */
export type MessageKind = keyof typeof TYP;

/** What every signed message binds. */
export interface Claims {
  /** 128 random bits, base64url: the seed's `ack`. A reply carries its request's. */
  id: string;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch. */
  exp: number;
  /** The node id this message is for. */
  aud: string;
  /** The node id of the sender. */
  iss: string;
  /** The HTTP method and path it was sent to (requests). */
  method?: string;
  path?: string;
  /** The mission the request claims to act under (requests). */
  mission?: string;
  /** The superjson-encoded payload: arguments, message or result. */
  body?: unknown;
  /** Where the sender can be reached, for messages to pids it passes (requests). */
  addr?: string;
  /** True for a cast: answer 202 once accepted, run without replying. */
  cast?: boolean;
  /** How long the caller waits, in ms (behaviour calls pass it on). */
  timeout?: number;
}

/** Header parameters that carry or point to keys, or change how the payload is read: never accepted. */
const FORBIDDEN_HEADER = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'b64', 'crit', 'zip'];
const ID = /^[A-Za-z0-9_-]{22}$/;
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** How far a sender's clock may be from ours, in seconds. */
export const CLOCK_SKEW_S = 30;
/** How long a signed message is valid, in seconds. */
export const MESSAGE_TTL_S = 60;

/** A fresh 128-bit message id. */
export function newMessageId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Signs `claims` as a compact JWS (RFC 7515) of kind `kind`, naming the
 * signing key `kid`. Built on Ed25519 directly (libsodium when it loads,
 * else node:crypto; any JOSE library verifies the result, as the specs check
 * with jose); the hot path of a remote call signs twice and verifies twice.
 */
export function sign(kind: MessageKind, claims: Claims, key: KeyObject, kid: string): Promise<string> {
  const input = `${b64json({ alg: 'EdDSA', typ: TYP[kind], kid })}.${b64json(claims)}`;
  if (load <= PARALLEL_ABOVE)
    return Promise.resolve(`${input}.${signNow(Buffer.from(input), key).toString('base64url')}`);
  // Under load, node:crypto signs on libuv's thread pool (that is what the
  // callback asks for): signatures then use every core instead of queueing
  // on the event loop. With little going on, signing in place is quicker.
  return new Promise<string>((resolve, reject) => {
    edSign(null, Buffer.from(input), key, (err, signature) => {
      if (err) reject(err);
      else resolve(`${input}.${signature.toString('base64url')}`);
    });
  });
}

/** Requests in progress in this program, sent and received. */
let load = 0;
/** With more requests than this in progress, crypto moves to the thread pool (a caller and a callee in one program make two). */
const PARALLEL_ABOVE = 2;

/** Runs a request counted in the load that decides where signatures are computed. */
export async function underLoad<T>(fn: () => Promise<T>): Promise<T> {
  load++;
  try {
    return await fn();
  } finally {
    load--;
  }
}

function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * Reads a compact JWS's protected header without trusting it, and checks its
 * shape: `alg` EdDSA, the expected `typ`, a `kid`, and no key-carrying or
 * payload-changing parameters. Returns the `kid`.
 */
export function readKid(jws: unknown, kind: MessageKind): string {
  if (typeof jws !== 'string' || !COMPACT.test(jws)) {
    throw new WireError('ERR_BAD_JWS', 400, 'the body must be a compact JWS (three base64url parts)');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(jws.slice(0, jws.indexOf('.')), 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch (err) {
    throw new WireError('ERR_BAD_JWS', 400, 'the JWS protected header is not valid JSON', { cause: err });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new WireError('ERR_BAD_JWS', 400, 'the JWS protected header must be a JSON object');
  }
  if (header.alg !== 'EdDSA') {
    throw new WireError('ERR_BAD_ALG', 401, `only alg EdDSA is accepted, got ${JSON.stringify(header.alg)}`);
  }
  for (const name of FORBIDDEN_HEADER) {
    if (name in header) throw new WireError('ERR_BAD_JWS', 401, `the JWS header parameter '${name}' is not accepted`);
  }
  if (header.typ !== TYP[kind]) {
    throw new WireError('ERR_BAD_JWS', 401, `expected typ ${TYP[kind]}, got ${JSON.stringify(header.typ)}`);
  }
  if (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128) {
    throw new WireError('ERR_BAD_JWS', 401, 'the JWS header must name its key in kid');
  }
  return header.kid;
}

/** Verifies `jws` with `key` and returns its claims; `ERR_BAD_SIGNATURE` (401) if it does not verify. */
export async function verify(jws: string, key: KeyObject): Promise<Claims> {
  const dot = jws.lastIndexOf('.');
  const input = jws.slice(0, dot);
  const signature = Buffer.from(jws.slice(dot + 1), 'base64url');
  const data = Buffer.from(input);
  let good = signature.length === 64;
  if (good && load <= PARALLEL_ABOVE) good = verifyNow(data, signature, key);
  else if (good) {
    // On the thread pool under load, as sign is.
    good = await new Promise<boolean>((resolve, reject) => {
      edVerify(null, data, key, signature, (err, ok) => (err ? reject(err) : resolve(ok)));
    });
  }
  if (!good) throw new WireError('ERR_BAD_SIGNATURE', 401, 'the signature does not verify');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(input.slice(input.indexOf('.') + 1), 'base64url').toString('utf8'));
  } catch (err) {
    throw new WireError('ERR_BAD_JWS', 400, 'the JWS payload is not JSON', { cause: err });
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new WireError('ERR_BAD_JWS', 400, 'the JWS payload must be an object of claims');
  }
  const c = claims as Claims;
  if (typeof c.id !== 'string' || !ID.test(c.id))
    throw new WireError('ERR_BAD_JWS', 400, 'id must be 128 bits, base64url');
  if (!Number.isFinite(c.iat) || !Number.isFinite(c.exp))
    throw new WireError('ERR_BAD_JWS', 400, 'iat and exp must be numbers');
  if (typeof c.aud !== 'string' || typeof c.iss !== 'string')
    throw new WireError('ERR_BAD_JWS', 400, 'aud and iss must be strings');
  return c;
}

/**
 * Checks that verified claims are for us, for this request, and current:
 * `ERR_WRONG_AUDIENCE` (401), `ERR_WRONG_PATH` (401), `ERR_STALE` (401).
 */
export function checkClaims(c: Claims, expect: { aud: string; method?: string; path?: string; nowS: number }): void {
  if (c.aud !== expect.aud) {
    throw new WireError('ERR_WRONG_AUDIENCE', 401, 'this message was signed for another node');
  }
  if (expect.path !== undefined && (c.path !== expect.path || c.method !== expect.method)) {
    throw new WireError(
      'ERR_WRONG_PATH',
      401,
      `this message was signed for ${c.method} ${c.path}, not ${expect.method} ${expect.path}`,
    );
  }
  if (c.iat > expect.nowS + CLOCK_SKEW_S) {
    throw new WireError('ERR_STALE', 401, 'this message was issued in the future; check the sender clock');
  }
  if (c.exp < expect.nowS - CLOCK_SKEW_S || c.exp - c.iat > MESSAGE_TTL_S) {
    throw new WireError('ERR_STALE', 401, 'this message has expired; send a fresh one');
  }
}
