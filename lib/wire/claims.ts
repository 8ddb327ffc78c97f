import { randomFillSync } from 'node:crypto';
import { epochSeconds, type WallClock } from '../runtime/clock.js';
import type { Encoded } from './codec.js';

/**
 * The claims of every signed message, one shape per kind, and the one
 * function that builds them from a clock. Each kind has its own JWS `typ`,
 * so a message of one kind is never accepted as another.
 * @module
 */

/** The kinds of signed message, each with its own JWS `typ`. */
export const TYP = Object.freeze({
  call: 'wtd-call+jws',
  reply: 'wtd-reply+jws',
  pid: 'wtd-pid+jws',
  proxy: 'wtd-proxy+jws',
});

/** A message kind, the key of {@link TYP}. */
export type MessageKind = keyof typeof TYP;

/** How far a sender's clock may be from ours, in seconds. */
export const CLOCK_SKEW_S = 30;
/** How long a signed message is valid, in seconds. */
export const MESSAGE_TTL_S = 60;

/** What every signed message binds. */
export interface BaseClaims {
  /** 128 random bits, base64url: the seed's `ack`. A reply carries its request's. */
  id: string;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch; at most {@link MESSAGE_TTL_S} after `iat`. */
  exp: number;
  /** The node (or proxy) id this message is for. */
  aud: string;
  /** The node id of the sender. */
  iss: string;
}

/** What every request binds besides: the HTTP method and path it was sent to, and its body. */
export interface RequestClaims extends BaseClaims {
  method: 'PUT';
  path: string;
  body: unknown;
}

/** `PUT /apply/...` and `PUT /behaviour/...`, signed with a grant's key. */
export interface CallClaims extends RequestClaims {
  /** The superjson-encoded arguments. */
  body: Encoded;
  /** The mission the request claims to act under. */
  mission?: string;
  /** True for a cast: answered 202 once accepted, run without replying. */
  cast?: boolean;
  /** How long the caller waits, in ms (behaviour calls pass it on). */
  timeout?: number;
  /**
   * The caller's deadline, epoch ms on its wall clock: the callee never
   * starts the request after it (`ERR_CALL_TIMEOUT`: it did not run), and a
   * proxy drops it from its queue then. A cast carries none: it keeps the
   * message's own time to live.
   */
  deadline?: number;
}

/**
 * `PUT /inbox`, signed with a grant's key: the grantee's long poll for the
 * messages this node has for the pids it handed over. `ack` is the `seq` of
 * the last message it took (0 at first); those up to it are forgotten.
 */
export interface InboxClaims extends RequestClaims {
  body: { ack: number };
}

/** One message of an inbox answer: to pid `id` of the grantee, with the token it was handed with. */
export interface InboxMessage {
  seq: number;
  id: number;
  token: string;
  msg: Encoded;
  /** Set for a monitor signal (see {@link MonitorBody}) rather than a message: `msg` is then its reason. */
  ctl?: MonitorControl;
}

/** Which monitor signal an outbox entry is, beside its pid id, token and encoded reason. */
export interface MonitorControl {
  op: 'monitor' | 'demonitor' | 'down';
  ref: string;
  /** For a `down` that answers a monitor request the sender refused: the refusal's code. */
  refused?: string;
}

/**
 * A monitor signal between two nodes, about pid `<id>` of the path (`PUT
 * /monitor/<id>`, or an inbox entry with `ctl`). `monitor` and `demonitor`
 * name a pid of the receiver, with the token it was handed to the sender
 * with; `ref` is the sender's name for the monitor. `down` tells the
 * receiver that pid `<id>` of the sender, which it monitors as `ref`,
 * exited with `reason` (or that its monitor request was `refused`).
 */
export interface MonitorBody extends MonitorControl {
  token: string;
  reason?: Encoded;
}

/** `PUT /monitor/<id>`: a monitor signal, signed as a pid message is (the same peers, the same keys). */
export interface MonitorClaims extends RequestClaims {
  body: MonitorBody;
}

/** `PUT /pid/<id>`: a message to a pid that was handed over, with the token that proves it was. */
export interface PidClaims extends RequestClaims {
  body: { token: string; msg: Encoded };
}

/** A reply, signed by the callee's node key, carrying its request's `id`. */
export interface ReplyClaims extends BaseClaims {
  body:
    | { ok: Encoded }
    | { error: { code: string; message: string } }
    | { inbox: InboxMessage[] }
    | { session: SessionOffer }
    | { results: unknown[] }
    | { lost: { sid: string; seq: number; code: string } };
  /** Set when the function that answered is marked `@WtdExport(mission, { idempotent: true })`. */
  idempotent?: true;
}

/**
 * What a node answers `PUT /session` with: the session's id, its own
 * ephemeral X25519 public key (32 bytes, base64url), how long the session
 * lasts and how many messages it carries each way.
 */
export interface SessionOffer {
  sid: string;
  epk: string;
  ttlMs: number;
  budget: number;
}

/** A request to the proxy itself (register, ping, poll), signed by the node key; its body is in `wire/relay.ts`. */
export type ProxyClaims = RequestClaims;

/** The claims of each kind. */
export interface ClaimsOf {
  call: CallClaims;
  reply: ReplyClaims;
  pid: PidClaims;
  proxy: ProxyClaims;
}

/** Any signed message's claims. */
export type Claims = ClaimsOf[MessageKind];

/** Random bytes drawn a few kilobytes at a time: one system call for 256 ids. */
const pool = Buffer.alloc(16 * 256);
let used = pool.length;

/** A fresh 128-bit message id. */
export function newMessageId(): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += 16;
  return pool.toString('base64url', used - 16, used);
}

/**
 * Claims of kind `K` issued now on `clock`: a fresh `id` (unless `fields`
 * carries one, as a reply does), `iat` now and `exp` {@link MESSAGE_TTL_S} later.
 */
export function newClaims<K extends MessageKind>(
  clock: WallClock,
  fields: Omit<ClaimsOf[K], 'id' | 'iat' | 'exp'> & { id?: string },
): ClaimsOf[K] {
  const iat = epochSeconds(clock);
  return { ...fields, id: fields.id ?? newMessageId(), iat, exp: iat + MESSAGE_TTL_S } as ClaimsOf[K];
}
