import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import type { ErrorCode } from '../error-codes.js';
import { WireError } from '../errors.js';

/**
 * The session layer of the wire: what two nodes use instead of a signature
 * per message once a grant's first request (signed as any other) has agreed
 * on keys. A session message is a compact JWE (RFC 7516) with `alg` `dir`
 * and `enc` `A256GCM`: one AES-GCM pass both hides the body and
 * authenticates it and the protected header, which is what the proxy may
 * read (who it is for, its sequence number, when it expires) and nothing
 * else. Any JOSE library opens one with the right key (a spec checks with
 * jose); this file builds and opens them with node:crypto directly, a few
 * microseconds each.
 * @module
 */

/**
 * The JWE `typ` of a request in a session, of a reply, and of one frame of
 * the streamed answer to several calls (`PUT /calls`).
 */
export const SESSION_TYP = Object.freeze({ request: 'wtd-sreq+jwe', reply: 'wtd-srep+jwe', frame: 'wtd-sfrm+jwe' });

/**
 * Which side of a session sent a message, and whether it is a request or
 * the reply to one: the first four bytes of its nonce, so that no two
 * messages under one key ever share a nonce (a reply takes its request's
 * sequence number, a request its sender's next one). Frame `f` of the
 * server's streamed answer to request `seq` takes kind `frame + f` with
 * that `seq`: frames can be neither reordered nor moved to another answer.
 */
export const NONCE = Object.freeze({
  clientRequest: 1,
  serverReply: 2,
  serverRequest: 3,
  clientReply: 4,
  frame: 0x100,
});

/** Most frames in one streamed answer (each carries at least one result, so far more than a request's calls). */
export const MAX_FRAMES = 0x1000;

/** The protected header of a session message: readable by whoever relays it, authenticated with the body. */
export interface SessionHeader {
  alg: 'dir';
  enc: 'A256GCM';
  typ: string;
  /**
   * The key id the receiver knows the sender by: a request from the
   * grantee names the grant's kid, one from the granting node its node
   * kid; a proxy queues it only for a receiver that accepts that kid.
   */
  kid: string;
  /** The session id the receiver gave in its answer to the first request. */
  sid: string;
  /** The message's sequence number (a reply: its request's), from 1. */
  seq: number;
  /** Issued at and expires at, seconds since the epoch (as a signed message's). */
  iat: number;
  exp: number;
  /** A call's deadline, epoch ms: the proxy drops it from its queue then. */
  deadline?: number;
}

const PART = /^[A-Za-z0-9_-]*$/;
const SID = /^[A-Za-z0-9_-]{22}$/;
/** The longest `kid` accepted in a header, as in a signed message. */
const MAX_KID = 128;

/** True when `text` has the five parts of a compact JWE (a signed message has three). */
export function isSessionMessage(text: string): boolean {
  let dots = 0;
  for (let i = text.indexOf('.'); i !== -1; i = text.indexOf('.', i + 1)) dots++;
  return dots === 4;
}

function badJwe(message: string, status = 400): WireError {
  return new WireError('ERR_BAD_JWS', status, message);
}

/**
 * Reads a session message's protected header without trusting it, and
 * checks its shape: five base64url parts with an empty key part, `alg`
 * `dir` (`ERR_BAD_ALG` otherwise), `enc` `A256GCM`, the expected `typ`, a
 * `kid`, a session id, a positive integer `seq`, numeric `iat` and `exp`.
 * `ERR_BAD_JWS` for any other shape.
 */
export function readSessionHeader(text: string, typ: string): SessionHeader {
  const parts = text.split('.');
  if (parts.length !== 5 || parts[1] !== '' || !parts.every((p) => PART.test(p))) {
    throw badJwe('a session message is a compact JWE with alg dir (five base64url parts, the second empty)');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new WireError('ERR_BAD_JWS', 400, 'the JWE protected header is not valid JSON', { cause: err });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw badJwe('the JWE protected header must be a JSON object');
  }
  if (header.typ !== typ) throw badJwe(`expected typ ${typ}, got ${JSON.stringify(header.typ)}`, 401);
  if (header.alg !== 'dir' || header.enc !== 'A256GCM') {
    throw new WireError('ERR_BAD_ALG', 401, 'a session message takes alg dir and enc A256GCM only');
  }
  if ('zip' in header || 'crit' in header) throw badJwe('the JWE header parameters zip and crit are not accepted', 401);
  if (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > MAX_KID) {
    throw badJwe('the JWE header must name its sender in kid', 401);
  }
  if (typeof header.sid !== 'string' || !SID.test(header.sid))
    throw badJwe('the JWE header must name its session', 401);
  if (!Number.isSafeInteger(header.seq) || (header.seq as number) < 1) {
    throw badJwe('the JWE header must carry a sequence number (a positive integer)', 401);
  }
  if (!Number.isFinite(header.iat) || !Number.isFinite(header.exp)) throw badJwe('iat and exp must be numbers', 401);
  if (header.deadline !== undefined && !Number.isFinite(header.deadline))
    throw badJwe('deadline must be a number', 401);
  return header as unknown as SessionHeader;
}

function nonce(kind: number, seq: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(kind, 0);
  iv.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 4);
  iv.writeUInt32BE(seq >>> 0, 8);
  return iv;
}

/**
 * Seals `payload` (any JSON value) under `key` as a compact JWE with
 * `header`; `kind` is one of {@link NONCE}, which with `header.seq` makes
 * the nonce.
 */
export function seal(key: Buffer, kind: number, header: SessionHeader, payload: unknown): string {
  const protectedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  const iv = nonce(kind, header.seq);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(protectedHeader, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return `${protectedHeader}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher
    .getAuthTag()
    .toString('base64url')}`;
}

/**
 * Opens a session message whose header was read by
 * {@link readSessionHeader}: its nonce must be the one `kind` and the
 * header's `seq` make, and it must authenticate under `key`
 * (`ERR_BAD_SIGNATURE` otherwise: another key, another session, a changed
 * header or body). Returns the payload, parsed.
 */
export function open(key: Buffer, kind: number, header: SessionHeader, text: string): unknown {
  const [protectedHeader, , iv, ciphertext, tag] = text.split('.') as [string, string, string, string, string];
  const expected = nonce(kind, header.seq);
  const tagBytes = Buffer.from(tag, 'base64url');
  const refused = (): WireError =>
    new WireError('ERR_BAD_SIGNATURE', 401, 'the message does not authenticate under this session');
  if (iv !== expected.toString('base64url') || tagBytes.length !== 16) throw refused();
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, expected);
    decipher.setAAD(Buffer.from(protectedHeader, 'ascii'));
    decipher.setAuthTag(tagBytes);
    plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
  } catch {
    throw refused();
  }
  try {
    return JSON.parse(plain.toString('utf8')) as unknown;
  } catch (err) {
    throw new WireError('ERR_BAD_JWS', 400, 'the session message does not hold JSON', { cause: err });
  }
}

/** An ephemeral X25519 key pair, its public half as 32 raw bytes in base64url. */
export interface Ephemeral {
  publicKey: string;
  privateKey: KeyObject;
}

/** A fresh ephemeral X25519 key pair: one per session and side, never stored. */
export function newEphemeral(): Ephemeral {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return { publicKey: jwk.x!, privateKey };
}

/** The other side's public key as sent: 32 bytes, base64url; `ERR_BAD_ARGUMENTS` if it is not one. */
export function readPublicKey(x: unknown): KeyObject {
  if (typeof x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(x)) {
    throw new WireError('ERR_BAD_ARGUMENTS', 400, 'a session key is 32 bytes of X25519, base64url');
  }
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
  } catch (err) {
    throw new WireError('ERR_BAD_ARGUMENTS', 400, 'a session key is 32 bytes of X25519, base64url', { cause: err });
  }
}

/** What the session keys are bound to: both nodes, the grant, both ephemeral keys and the session id. */
export interface SessionBinding {
  /** The grantee's node id (the caller), and the granting node's (the callee). */
  client: string;
  server: string;
  grantKid: string;
  clientKey: string;
  serverKey: string;
  sid: string;
}

/** The two keys of a session, one per direction. */
export interface SessionKeys {
  clientToServer: Buffer;
  serverToClient: Buffer;
}

/**
 * Both directions' keys: HKDF-SHA256 over the X25519 shared secret of
 * `mine` and `theirs`, salted with the session id, with everything the
 * session is bound to in `info`. Either side derives the same two keys; a
 * key made for another grant, node or session opens nothing here.
 * `ERR_BAD_ARGUMENTS` for a public key that makes no shared secret (a
 * low-order point).
 */
export function deriveKeys(mine: KeyObject, theirs: KeyObject, binding: SessionBinding): SessionKeys {
  const shared = sharedSecret(mine, theirs, 'ERR_BAD_ARGUMENTS', 'session');
  const info = Buffer.from(
    ['wtd-session-1', binding.client, binding.server, binding.grantKid, binding.clientKey, binding.serverKey].join(
      '\n',
    ),
  );
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.from(binding.sid, 'base64url'), info, 64));
  return { clientToServer: okm.subarray(0, 32), serverToClient: okm.subarray(32, 64) };
}

/**
 * The X25519 secret of `mine` and `theirs`; a key that makes none (a
 * low-order point) is refused with `code` (400), naming `what` key it is.
 */
export function sharedSecret(mine: KeyObject, theirs: KeyObject, code: ErrorCode, what: string): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: mine, publicKey: theirs });
  } catch (err) {
    throw new WireError(code, 400, `this ${what} key makes no shared secret`, { cause: err });
  }
  if (shared.every((b) => b === 0)) throw new WireError(code, 400, `this ${what} key makes no shared secret`);
  return shared;
}

/** How far behind the newest sequence number a message may arrive and still be taken once. */
export const SEQ_WINDOW = 1024;

/**
 * The replay window of one direction of a session, as DTLS and IPsec keep
 * it: the newest sequence number seen and a bitmap of the
 * {@link SEQ_WINDOW} before it. A message is new (taken once), seen (a
 * resend, or a replay), or too old to tell (refused). Nothing is written
 * per message anywhere else.
 */
export class SeqWindow {
  #top = 0;
  readonly #bits = new Uint32Array(SEQ_WINDOW / 32);

  /** What `seq` is: `new` (now marked seen), `seen`, or `old` (before the window). */
  accept(seq: number): 'new' | 'seen' | 'old' {
    if (seq > this.#top) {
      const shift = seq - this.#top;
      if (shift >= SEQ_WINDOW) this.#bits.fill(0);
      else for (let s = this.#top + 1; s < seq; s++) this.#clear(s);
      this.#top = seq;
      this.#set(seq);
      return 'new';
    }
    if (this.#top - seq >= SEQ_WINDOW) return 'old';
    if (this.#has(seq)) return 'seen';
    this.#set(seq);
    return 'new';
  }

  #set(seq: number): void {
    const i = seq % SEQ_WINDOW;
    this.#bits[i >> 5]! |= 1 << (i & 31);
  }

  #clear(seq: number): void {
    const i = seq % SEQ_WINDOW;
    this.#bits[i >> 5]! &= ~(1 << (i & 31));
  }

  #has(seq: number): boolean {
    const i = seq % SEQ_WINDOW;
    return (this.#bits[i >> 5]! & (1 << (i & 31))) !== 0;
  }
}
