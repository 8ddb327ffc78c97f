import { randomBytes } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader, errors as joseErrors, type CryptoKey } from 'jose';
import { WireError } from '../errors.js';

/** The kinds of signed message, each with its own JWS `typ`. */
export const TYP = Object.freeze({
  call: 'wtd-call+jws',
  reply: 'wtd-reply+jws',
  pid: 'wtd-pid+jws',
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Signs `claims` as a compact JWS of kind `kind`, naming the signing key `kid`. */
export async function sign(kind: MessageKind, claims: Claims, key: CryptoKey, kid: string): Promise<string> {
  return new CompactSign(encoder.encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'EdDSA', typ: TYP[kind], kid })
    .sign(key);
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
    header = decodeProtectedHeader(jws) as Record<string, unknown>;
  } catch (err) {
    throw new WireError('ERR_BAD_JWS', 400, 'the JWS protected header is not valid JSON', { cause: err });
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
export async function verify(jws: string, key: CryptoKey): Promise<Claims> {
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, key, { algorithms: ['EdDSA'] }));
  } catch (err) {
    if (err instanceof joseErrors.JOSEError) {
      throw new WireError('ERR_BAD_SIGNATURE', 401, 'the signature does not verify', { cause: err });
    }
    throw err;
  }
  let claims: unknown;
  try {
    claims = JSON.parse(decoder.decode(payload));
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
