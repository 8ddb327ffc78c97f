import type { JWK } from 'jose';
import { WireError } from '../errors.js';

/**
 * The relay protocol between a node and a proxy: what a registration, a
 * ping and a poll carry and what comes back. The node's client builds these
 * shapes and the proxy reads them through the parsers below, so both sides
 * type against one definition. Each body travels inside a signed
 * `wtd-proxy+jws` request; a body that does not have its shape is refused
 * with `ERR_PROXY_BAD_REQUEST` (400).
 * @module
 */

/** `PUT /register`: an e-mail bound to the key that signs the request. */
export interface RegisterBody {
  email: string;
  name: string;
  publicJwk: JWK;
}

/** The answer to a registration: the node id, and the bounds its pings must keep to. */
export interface RegisterAnswer {
  id: string;
  limits?: PingLimits;
}

/** The most a ping may carry: missions and accepted key ids (counts), and the whole body (bytes of JSON). */
export interface PingLimits {
  missions: number;
  accepts: number;
  bytes: number;
}

/** The bounds of a ping when the proxy names none. */
export const PING_LIMITS: Readonly<PingLimits> = Object.freeze({ missions: 64, accepts: 256, bytes: 32 * 1024 });

/** `PUT /nodes/<id>/ping`: what the node offers, and how far it has read the directory. */
export interface PingBody {
  name: string;
  missions: string[];
  /**
   * The key ids it accepts messages signed by: its grants, and the node keys
   * of peers it takes pid messages from. The proxy queues for the node only
   * requests signed under one of these; they are not published.
   */
  accepts: string[];
  address: string | null;
  /** The `cursor` of the last directory answer it read; absent for the whole directory. */
  since?: string;
  /**
   * A random id the node picked when it started: a ping with another one
   * for a node the proxy knows is a restart (its processes, and monitors on
   * them, are gone). Letters, digits, `_` and `-`, at most 64.
   */
  incarnation?: string;
  /**
   * Set when the node runs with encryption off (for debugging): what it
   * sends and answers is in the clear, and the status page says so.
   */
  plaintext?: true;
}

/**
 * A node as the proxy's directory lists it.
 *
 * @example
 * ```ts
 * for (const e of bob.directory()) console.log(e.name, e.online, e.missions.join(', '));
 * ```
 */
export interface DirectoryEntry {
  /** The node id (a fingerprint of its key). */
  id: string;
  name: string;
  /** The missions it offers. */
  missions: string[];
  /** Where it can be reached directly, if it listens; null for a node behind a router. */
  address: string | null;
  online: boolean;
  /**
   * For a node online: `'up'`, or `'suspect'` once it has been silent for
   * the proxy's `suspectAfterMs` (it is still listed; `downAfterMs` takes it
   * offline). Absent from a proxy that does not tell.
   */
  status?: 'up' | 'suspect';
  /** The incarnation of its last ping: another one means it restarted. */
  incarnation?: string;
  /** Epoch ms of the ping that made this entry: when it came online, changed its offer, or was last seen. */
  lastSeen: number;
  /**
   * The node's public key, as it registered it (its id is a fingerprint of
   * it, so a node checks one against the other): what a mission group needs
   * to verify the node's answers. Absent from older proxies.
   */
  publicJwk?: JWK;
}

/**
 * The answer to a ping: the directory's changes since the ping's `since`,
 * at most one page of them. An entry replaces what the node knew of that
 * id; one with `online: false` means the node went offline or away.
 */
export interface PingAnswer {
  /** Where this answer leaves the reader: the next ping's `since`. */
  cursor: string;
  /** The changes start from an empty directory (the cursor was unknown or too old): drop the rest once `more` is false. */
  reset: boolean;
  changes: DirectoryEntry[];
  /** More changes wait: ping again with `cursor` for the next page. */
  more: boolean;
}

/** A request relayed to another node: the path on it and the signed JWS, byte for byte. */
export interface RelayRequest {
  /** Unique per sender and destination: the proxy and the receiver drop repeats of it. */
  id: string;
  kind: 'request';
  path: string;
  jws: string;
}

/** The answer to a relayed request, relayed back. */
export interface RelayResponse {
  id: string;
  kind: 'response';
  /** The id of the request it answers. */
  re: string;
  status: number;
  contentType: string;
  text: string;
  retryAfter?: string;
}

/**
 * A caller taking back request `re` it sent to `to`: the proxy drops it if
 * it has not handed it to `to` yet (the poll's result for it has no error),
 * and says `ERR_MAYBE_RAN` if it has (or knows no such request). It is
 * never delivered.
 */
export interface RelayCancel {
  id: string;
  kind: 'cancel';
  re: string;
}

/** A relayed message as a node sends it: with its destination. */
export type OutgoingRelay = (RelayRequest | RelayResponse | RelayCancel) & { to: string };

/** A relayed message as the proxy delivers it: with its sender, as the proxy authenticated it. */
export type DeliveredRelay = (RelayRequest | RelayResponse) & { from: string };

/** `PUT /nodes/<id>/poll`: acknowledgements of what the last poll brought, and messages to send. */
export interface PollBody {
  ack: string[];
  messages: OutgoingRelay[];
}

/** The proxy's verdict on one message a poll carried: taken, or refused with a code. */
export interface RelayResult {
  id: string;
  error?: { code: string; status: number; message: string };
}

/** The answer to a poll: one result per message sent, what waited for the node, and when to poll again if busy. */
export interface PollAnswer {
  results: RelayResult[];
  messages: DeliveredRelay[];
  retryMs?: number;
}

/** Most messages in one poll. */
export const SEND_BATCH = 1000;
/** Most acknowledgements in one poll. */
export const ACK_BATCH = 10 * SEND_BATCH;

const EMAIL = /^[^\s@\p{Cc}\p{Cf}]{1,64}@[^\s@\p{Cc}\p{Cf}]{1,190}$/u;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const RELAY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
// eslint-disable-next-line no-control-regex -- the point: refuse control characters
const ADDRESS = /^https?:\/\/[^\s\u0000-\u001f\u007f-\u009f]{1,200}$/;
/** The mission-name rule of `@WtdExport` and `@WtdBehaviour`. */
const MISSION = /^[a-z][a-z0-9_]{0,63}$/;
/** A key id: an RFC 7638 thumbprint, base64url. */
const KID = /^[A-Za-z0-9_-]{1,128}$/;
const CURSOR = /^[A-Za-z0-9_.-]{1,64}$/;
const INCARNATION = /^[A-Za-z0-9_-]{1,64}$/;

function bad(message: string): never {
  throw new WireError('ERR_PROXY_BAD_REQUEST', 400, message);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad(`${what} must be an object`);
  return value as Record<string, unknown>;
}

// eslint-disable-next-line no-control-regex -- the point: refuse control characters
const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]{0,128}$/;

function strings(value: unknown, max: number, what: string, rule = PRINTABLE): string[] {
  if (!Array.isArray(value) || value.length > max || !value.every((v) => typeof v === 'string' && rule.test(v))) {
    bad(`${what} must be a list of at most ${max} ${what === 'ack' ? 'ids' : `valid ${what}`}`);
  }
  return value as string[];
}

/** Reads a registration; the name falls back to `'node'`. */
export function parseRegisterBody(body: unknown): RegisterBody {
  const b = record(body, 'a registration');
  if (typeof b.email !== 'string' || !EMAIL.test(b.email)) bad('a registration needs a valid e-mail');
  const jwk = record(b.publicJwk, 'publicJwk') as JWK;
  const name = typeof b.name === 'string' && NAME.test(b.name) ? b.name : 'node';
  return { email: b.email, name, publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } };
}

function tooLarge(message: string): never {
  throw new WireError('ERR_PROXY_TOO_LARGE', 413, message);
}

/**
 * Reads a ping within `limits`: more missions or accepted key ids than they
 * allow, or a body longer than their bytes, is refused with
 * `ERR_PROXY_TOO_LARGE` (413); a malformed one with `ERR_PROXY_BAD_REQUEST`.
 * An address that is not an http(s) URL is taken as none, a cursor not of
 * the proxy's making as none (the whole directory). `grants`, the name the
 * accepted list had before, is read when `accepts` is absent.
 */
export function parsePingBody(body: unknown, limits: PingLimits = PING_LIMITS): PingBody {
  const b = record(body ?? {}, 'a ping');
  const missions = b.missions ?? [];
  const accepts = b.accepts ?? b.grants ?? [];
  if (Array.isArray(missions) && missions.length > limits.missions) {
    tooLarge(`a ping offers at most ${limits.missions} missions`);
  }
  if (Array.isArray(accepts) && accepts.length > limits.accepts) {
    tooLarge(`a ping names at most ${limits.accepts} accepted key ids`);
  }
  if (b.incarnation !== undefined && (typeof b.incarnation !== 'string' || !INCARNATION.test(b.incarnation))) {
    bad('a ping’s incarnation is 1 to 64 letters, digits, _ or -');
  }
  const ping: PingBody = {
    name: typeof b.name === 'string' ? b.name : '',
    missions: strings(missions, limits.missions, 'missions', MISSION),
    accepts: strings(accepts, limits.accepts, 'accepted key ids', KID),
    address: typeof b.address === 'string' && ADDRESS.test(b.address) ? b.address : null,
    ...(typeof b.since === 'string' && CURSOR.test(b.since) ? { since: b.since } : {}),
    ...(b.incarnation === undefined ? {} : { incarnation: b.incarnation }),
    ...(b.plaintext === true ? { plaintext: true as const } : {}),
  };
  if (Buffer.byteLength(JSON.stringify(ping)) > limits.bytes) tooLarge(`a ping is at most ${limits.bytes} bytes`);
  return ping;
}

/** Reads a poll's acknowledgements and the list of messages it carries (each read by {@link parseOutgoing}). */
export function parsePollBody(body: unknown): { ack: string[]; messages: unknown[] } {
  const b = record(body ?? {}, 'a poll');
  const ack = strings(b.ack ?? [], ACK_BATCH, 'ack');
  const messages = b.messages ?? [];
  if (!Array.isArray(messages) || messages.length > SEND_BATCH) {
    bad(`a poll carries at most ${SEND_BATCH} messages`);
  }
  return { ack, messages };
}

/**
 * Reads one message a poll carries. A malformed one is refused on its own
 * (the others of the poll still go), so this returns its id and the refusal
 * rather than throwing.
 */
export function parseOutgoing(m: unknown): OutgoingRelay | { id: unknown; error: WireError } {
  const msg = m as Record<string, unknown> | null;
  const id = msg?.id;
  const fail = (message: string) => ({ id, error: new WireError('ERR_PROXY_BAD_REQUEST', 400, message) });
  if (msg === null || typeof msg !== 'object' || typeof id !== 'string' || !RELAY_ID.test(id)) {
    return fail('a relayed message needs an id');
  }
  if (typeof msg.to !== 'string') return fail('a relayed message needs a destination');
  if (msg.kind === 'request') {
    if (typeof msg.path !== 'string' || typeof msg.jws !== 'string') return fail('a request carries a path and a JWS');
    return { id, kind: 'request', to: msg.to, path: msg.path, jws: msg.jws };
  }
  if (msg.kind === 'response') {
    if (typeof msg.re !== 'string' || typeof msg.status !== 'number') return fail('a response carries re and status');
    return {
      id,
      kind: 'response',
      to: msg.to,
      re: msg.re,
      status: msg.status,
      contentType: String(msg.contentType ?? ''),
      text: String(msg.text ?? ''),
      ...(typeof msg.retryAfter === 'string' ? { retryAfter: msg.retryAfter } : {}),
    };
  }
  if (msg.kind === 'cancel') {
    if (typeof msg.re !== 'string' || !RELAY_ID.test(msg.re)) return fail('a cancel names the request it takes back');
    return { id, kind: 'cancel', to: msg.to, re: msg.re };
  }
  return fail('kind is request, response or cancel');
}
