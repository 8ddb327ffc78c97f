import { sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { WireError } from '../errors.js';
import { TYP, type ClaimsOf, type MessageKind, type BaseClaims } from './claims.js';
import { signNow, verifyNow } from './ed25519.js';

/** Header parameters that carry or point to keys, or change how the payload is read: never accepted. */
const FORBIDDEN_HEADER = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'b64', 'crit', 'zip'];
const ID = /^[A-Za-z0-9_-]{22}$/;
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Signs `claims` as a compact JWS (RFC 7515) of kind `kind`, naming the
 * signing key `kid`. Built on Ed25519 directly (libsodium when it loads,
 * else node:crypto; any JOSE library verifies the result, as the specs check
 * with jose); the hot path of a remote call signs twice and verifies twice.
 */
export function sign<K extends MessageKind>(
  kind: K,
  claims: ClaimsOf[K],
  key: KeyObject,
  kid: string,
): Promise<string> {
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
 * Reads a compact JWS's protected header without trusting it and checks
 * its shape, in this order: three base64url parts, a JSON object, the
 * expected `typ` (`ERR_BAD_JWS`), `alg` EdDSA (`ERR_BAD_ALG`), no
 * key-carrying or payload-changing parameters, a `kid`. Returns the `kid`.
 * Only the authentication pipeline calls it.
 */
export function readKid(jws: unknown, kind: MessageKind): string {
  if (typeof jws !== 'string' || !COMPACT.test(jws)) {
    throw new WireError('ERR_BAD_JWS', 400, 'the body must be a compact JWS (three base64url parts)');
  }
  // One signature, one spelling: base64url with unused bits set decodes to the same bytes.
  const signature = jws.slice(jws.lastIndexOf('.') + 1);
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) {
    throw new WireError('ERR_BAD_JWS', 400, 'the signature is not canonical base64url');
  }
  const header = parsePart(jws.slice(0, jws.indexOf('.')), 'protected header');
  if (header.typ !== TYP[kind]) {
    throw new WireError('ERR_BAD_JWS', 401, `expected typ ${TYP[kind]}, got ${JSON.stringify(header.typ)}`);
  }
  if (header.alg !== 'EdDSA') {
    throw new WireError('ERR_BAD_ALG', 401, `only alg EdDSA is accepted, got ${JSON.stringify(header.alg)}`);
  }
  for (const name of FORBIDDEN_HEADER) {
    if (name in header) throw new WireError('ERR_BAD_JWS', 401, `the JWS header parameter '${name}' is not accepted`);
  }
  if (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128) {
    throw new WireError('ERR_BAD_JWS', 401, 'the JWS header must name its key in kid');
  }
  return header.kid;
}

/** The claims of a JWS read without verifying it (a registration names its own key in them); `ERR_BAD_JWS` if not an object. */
export function peekClaims(jws: string): Record<string, unknown> {
  return parsePart(jws.slice(jws.indexOf('.') + 1, jws.lastIndexOf('.')), 'payload');
}

/** The protected header of a compact JWS or JWE, read without verifying; `ERR_BAD_JWS` if not an object. */
export function peekHeader(text: string): Record<string, unknown> {
  return parsePart(text.slice(0, Math.max(0, text.indexOf('.'))), 'protected header');
}

/**
 * The `kid` a compact JWS's header names, read without verifying: the proxy
 * queues a relayed request only under a key id its receiver accepts (the
 * receiver verifies). Undefined when there is no readable one.
 */
export function peekKid(jws: string): string | undefined {
  const dot = jws.indexOf('.');
  if (dot <= 0) return undefined;
  try {
    const kid = parsePart(jws.slice(0, dot), 'protected header').kid;
    return typeof kid === 'string' && kid.length > 0 && kid.length <= 128 ? kid : undefined;
  } catch {
    return undefined;
  }
}

function parsePart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (err) {
    throw new WireError('ERR_BAD_JWS', 400, `the JWS ${what} is not valid JSON`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WireError('ERR_BAD_JWS', 400, `the JWS ${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Verifies `jws` with `key` (`ERR_BAD_SIGNATURE`, 401) and returns its
 * claims once their common shape is checked (`ERR_BAD_JWS`, 400): an `id`
 * of 128 bits, numeric `iat` and `exp`, string `aud` and `iss`.
 */
export async function verify(jws: string, key: KeyObject): Promise<BaseClaims & Record<string, unknown>> {
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
  const c = parsePart(input.slice(input.indexOf('.') + 1), 'payload');
  if (typeof c.id !== 'string' || !ID.test(c.id))
    throw new WireError('ERR_BAD_JWS', 400, 'id must be 128 bits, base64url');
  if (!Number.isFinite(c.iat) || !Number.isFinite(c.exp))
    throw new WireError('ERR_BAD_JWS', 400, 'iat and exp must be numbers');
  if (typeof c.aud !== 'string' || typeof c.iss !== 'string')
    throw new WireError('ERR_BAD_JWS', 400, 'aud and iss must be strings');
  return c as BaseClaims & Record<string, unknown>;
}
