import { randomBytes } from 'node:crypto';
import { WireError } from '../errors.js';
import { epochSeconds, type WallClock } from '../runtime/clock.js';
import { MESSAGE_TTL_S, type ReplyClaims, type SessionOffer } from '../wire/claims.js';
import {
  MAX_FRAMES,
  NONCE,
  SESSION_TYP,
  SeqWindow,
  deriveKeys,
  open,
  readPublicKey,
  seal,
  type Ephemeral,
  type SessionHeader,
  type SessionKeys,
} from '../wire/session.js';

/**
 * Bounds of the sessions a node keeps: how long one lasts, how many
 * messages it carries each way, how many one grant may hold and how many
 * there are in all.
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({
 *   name: 'alice',
 *   dataDir: ':memory:',
 *   sessions: { lifetimeMs: 60_000, budget: 10_000 },
 * });
 * ```
 */
export interface SessionLimits {
  /** How long a session lasts from its first request, in ms; then the caller agrees on new keys. Default 10 minutes. */
  lifetimeMs: number;
  /** How many messages a session carries each way before new keys. Default 1,000,000. */
  budget: number;
  /** Sessions one grant may hold at once (a newer one ends the oldest). Default 4. */
  perGrant: number;
  /** Sessions this node holds in all, for callers (`ERR_TOO_MANY_SESSIONS` past it). Default 4096. */
  max: number;
}

export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = Object.freeze({
  lifetimeMs: 10 * 60_000,
  budget: 1_000_000,
  perGrant: 4,
  max: 4096,
});

/** Sessions a grant may open at once before it has to wait for more. */
export const HANDSHAKES_BURST = 16;
/** How often a grant gets one more session opening, in ms. */
export const HANDSHAKE_REFILL_MS = 2000;

/** A session's content for a request: where it goes and what it carries (its header says the rest). */
export interface SessionRequest {
  path: string;
  body: unknown;
  mission?: string;
  cast?: true;
  timeout?: number;
}

/** A session's reply: the body a signed reply would carry. */
export interface SessionReply {
  body: ReplyClaims['body'];
  idempotent?: true;
}

/**
 * One session between a grantee (the client) and the node that granted it
 * (the server), as one side holds it: its keys, who is on the other side,
 * and the replay window of what it receives. Made by the first request of
 * a grant (`PUT /session`, signed), used by every later one.
 */
export class Session {
  readonly sid: string;
  readonly role: 'client' | 'server';
  /** The grant the session runs under. */
  readonly grantKid: string;
  /** The other side's node id: what it must be sent as (and what a relaying proxy must say it came from). */
  readonly peerNodeId: string;
  /** The key id the other side's requests name (`kid`) and are accepted under as pid messages. */
  readonly peerKid: string;
  /** The key id this side's requests name. */
  readonly ownKid: string;
  /** When it ends, on this side's wall clock (epoch ms). */
  readonly expiresAt: number;
  readonly budget: number;
  readonly #send: Buffer;
  readonly #recv: Buffer;
  readonly #window = new SeqWindow();
  readonly #clock: WallClock;
  #sent = 0;
  #received = 0;
  #ended = false;

  constructor(init: {
    sid: string;
    role: 'client' | 'server';
    grantKid: string;
    peerNodeId: string;
    peerKid: string;
    ownKid: string;
    keys: SessionKeys;
    expiresAt: number;
    budget: number;
    clock: WallClock;
  }) {
    this.sid = init.sid;
    this.role = init.role;
    this.grantKid = init.grantKid;
    this.peerNodeId = init.peerNodeId;
    this.peerKid = init.peerKid;
    this.ownKid = init.ownKid;
    this.expiresAt = init.expiresAt;
    this.budget = init.budget;
    this.#clock = init.clock;
    const client = init.role === 'client';
    this.#send = client ? init.keys.clientToServer : init.keys.serverToClient;
    this.#recv = client ? init.keys.serverToClient : init.keys.clientToServer;
  }

  /** True once it has lasted its lifetime or carried its budget (either way), or was ended. */
  get spent(): boolean {
    return (
      this.#ended || this.#clock.now() >= this.expiresAt || this.#sent >= this.budget || this.#received >= this.budget
    );
  }

  /** True when the client should agree on new keys before its next request (close to the end, with a margin). */
  get ending(): boolean {
    return (
      this.#ended ||
      this.#clock.now() >= this.expiresAt - 5000 ||
      this.#sent >= this.budget - 1 ||
      this.#received >= this.budget
    );
  }

  /** Ends it: nothing more is sealed or opened with it. */
  end(): void {
    this.#ended = true;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Seals a request from this side: the next sequence number, `iat`/`exp` now. */
  sealRequest(request: SessionRequest, deadline?: number): { text: string; seq: number } {
    const seq = ++this.#sent;
    const header = this.#header(SESSION_TYP.request, seq);
    if (deadline !== undefined) header.deadline = deadline;
    const kind = this.role === 'client' ? NONCE.clientRequest : NONCE.serverRequest;
    return { text: seal(this.#send, kind, header, request), seq };
  }

  /** Seals the reply to the other side's request `seq`. */
  sealReply(seq: number, reply: SessionReply): string {
    const header = this.#header(SESSION_TYP.reply, seq);
    const kind = this.role === 'client' ? NONCE.clientReply : NONCE.serverReply;
    return seal(this.#send, kind, header, reply);
  }

  /**
   * Seals frame `f` (from 0) of the streamed answer to the client's request
   * `seq`: `payload` under the frame's own nonce. A server's only.
   */
  sealFrame(seq: number, f: number, payload: unknown): string {
    if (this.role !== 'server' || !(Number.isSafeInteger(f) && f >= 0 && f < MAX_FRAMES)) {
      throw new RangeError(`frames are sealed by a server, 0 to ${MAX_FRAMES - 1}`);
    }
    return seal(this.#send, NONCE.frame + f, this.#header(SESSION_TYP.frame, seq), payload);
  }

  /** The protected header of a message of this side: `typ`, sequence number `seq`, `iat`/`exp` now. */
  #header(typ: string, seq: number): SessionHeader {
    const iat = epochSeconds(this.#clock);
    return { alg: 'dir', enc: 'A256GCM', typ, kid: this.ownKid, sid: this.sid, seq, iat, exp: iat + MESSAGE_TTL_S };
  }

  /**
   * Opens frame `f` of the answer to this side's request `seq`
   * (`ERR_BAD_REPLY` for anything else: another session, request or
   * place in the stream, a changed byte). A client's only.
   */
  openFrame(seq: number, f: number, header: SessionHeader, text: string): unknown {
    if (this.role !== 'client' || header.sid !== this.sid || header.seq !== seq || !(f >= 0 && f < MAX_FRAMES)) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the frame does not answer this request');
    }
    try {
      return open(this.#recv, NONCE.frame + f, header, text);
    } catch (err) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the frame does not authenticate under this session', { cause: err });
    }
  }

  /**
   * Opens a request from the other side whose header was read: it must
   * authenticate under this session (`ERR_BAD_SIGNATURE`). Its sequence
   * number is not yet marked: {@link admit} does that.
   */
  openRequest(header: SessionHeader, text: string): SessionRequest {
    const kind = this.role === 'client' ? NONCE.serverRequest : NONCE.clientRequest;
    const payload = open(this.#recv, kind, header, text) as Partial<SessionRequest> | null;
    if (payload === null || typeof payload !== 'object' || typeof payload.path !== 'string') {
      throw new WireError('ERR_BAD_JWS', 400, 'a session request carries { path, body }');
    }
    this.#received++;
    return payload as SessionRequest;
  }

  /** Marks `seq` received: `new` the first time, `seen` for a resend or replay, `old` when before the window. */
  admit(seq: number): 'new' | 'seen' | 'old' {
    return this.#window.accept(seq);
  }

  /**
   * Opens the reply to this side's request `seq` (`ERR_BAD_REPLY` for
   * anything else: another session, another request, a changed byte).
   */
  openReply(seq: number, header: SessionHeader, text: string): SessionReply {
    if (header.sid !== this.sid || header.seq !== seq) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply does not answer this request');
    }
    const kind = this.role === 'client' ? NONCE.serverReply : NONCE.clientReply;
    let payload: Partial<SessionReply> | null;
    try {
      payload = open(this.#recv, kind, header, text) as Partial<SessionReply> | null;
    } catch (err) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply does not authenticate under this session', { cause: err });
    }
    if (payload === null || typeof payload !== 'object') {
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply carries no body');
    }
    return payload as SessionReply;
  }
}

/**
 * The caller's side of the session a node offered in answer to the first
 * request, which carried `mine`: both keys derived and bound to the two
 * nodes and the grant, lasting what the offer says (unless `expiresAt` or
 * `budget` say otherwise). `ERR_BAD_ARGUMENTS` for an unusable key.
 */
export function clientSession(init: {
  mine: Ephemeral;
  offer: SessionOffer;
  /** This node's id, and the id of the node that offered it. */
  client: string;
  server: string;
  grantKid: string;
  /** The key id the offering node's own requests in the session name. */
  peerKid: string;
  clock: WallClock;
  expiresAt?: number;
  budget?: number;
}): Session {
  const { mine, offer } = init;
  const keys = deriveKeys(mine.privateKey, readPublicKey(offer.epk), {
    client: init.client,
    server: init.server,
    grantKid: init.grantKid,
    clientKey: mine.publicKey,
    serverKey: offer.epk,
    sid: offer.sid,
  });
  return new Session({
    sid: offer.sid,
    role: 'client',
    grantKid: init.grantKid,
    peerNodeId: init.server,
    peerKid: init.peerKid,
    ownKid: init.grantKid,
    keys,
    expiresAt: init.expiresAt ?? init.clock.now() + Number(offer.ttlMs),
    budget: init.budget ?? Number(offer.budget),
    clock: init.clock,
  });
}

/** A fresh session id: 128 random bits, base64url. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Every session a node holds, both roles, by session id: those callers
 * made with it (bounded per grant and in all, each for its lifetime) and
 * those it made as a caller (so that the other node's requests in them,
 * messages to our pids, are opened). A grant that ends takes its sessions
 * with it.
 */
export class Sessions {
  readonly limits: SessionLimits;
  readonly #clock: WallClock;
  readonly #byId = new Map<string, Session>();
  /** The server sessions of each grant, oldest first. */
  readonly #byGrant = new Map<string, Session[]>();
  #servers = 0;

  constructor(clock: WallClock, limits: Partial<SessionLimits> = {}) {
    this.#clock = clock;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...limits };
  }

  /** First requests of sessions each grant may still make now: a bucket of {@link HANDSHAKES_BURST}, one back every {@link HANDSHAKE_REFILL_MS}. */
  readonly #handshakes = new Map<string, { tokens: number; at: number }>();

  /**
   * Takes one of a grant's session openings: 0 when taken, else the ms
   * until one is free. They do not spend the grant's rate (a session is
   * not a call), but they are bounded: each costs this node a signature
   * and a key agreement.
   */
  takeHandshake(grantKid: string): number {
    const now = this.#clock.now();
    const b = this.#handshakes.get(grantKid) ?? { tokens: HANDSHAKES_BURST, at: now };
    b.tokens = Math.min(HANDSHAKES_BURST, b.tokens + Math.max(0, now - b.at) / HANDSHAKE_REFILL_MS);
    b.at = now;
    this.#handshakes.set(grantKid, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) * HANDSHAKE_REFILL_MS);
  }

  /** The session `sid` names, if this node holds it. */
  get(sid: string): Session | undefined {
    return this.#byId.get(sid);
  }

  /** How many sessions are held, for callers and as a caller. */
  get size(): { server: number; client: number } {
    return { server: this.#servers, client: this.#byId.size - this.#servers };
  }

  /**
   * Holds a session a caller just made under `grantKid`: the grant's
   * oldest goes past {@link SessionLimits.perGrant}; past
   * {@link SessionLimits.max} in all (once spent ones are dropped) it is
   * refused, `ERR_TOO_MANY_SESSIONS`.
   */
  addServer(session: Session): void {
    let mine = this.#byGrant.get(session.grantKid);
    if (mine === undefined && this.#servers >= this.limits.max) {
      this.#sweep();
      if (this.#servers >= this.limits.max) {
        throw new WireError('ERR_TOO_MANY_SESSIONS', 503, 'this node holds as many sessions as it takes; try later');
      }
    }
    // Ids are 128 random bits this node drew; one held already (it never is) is not taken.
    if (this.#byId.has(session.sid)) throw new WireError('ERR_INTERNAL', 500, 'a session id repeated');
    if (mine === undefined) this.#byGrant.set(session.grantKid, (mine = []));
    mine.push(session);
    this.#byId.set(session.sid, session);
    this.#servers++;
    while (mine.length > this.limits.perGrant) this.#drop(mine[0]!);
  }

  /**
   * Holds a session this node made as a caller. Its id came from the other
   * node: one this node holds already (another session's, of any role) is
   * refused, `ERR_BAD_REPLY`, so that no node can take over another's.
   */
  addClient(session: Session): void {
    if (this.#byId.has(session.sid)) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the node answered with a session id already in use here');
    }
    this.#byId.set(session.sid, session);
  }

  /** The newest usable session callers made under `grantKid` (messages to their pids go in it). */
  latest(grantKid: string): Session | undefined {
    const mine = this.#byGrant.get(grantKid);
    if (mine === undefined) return undefined;
    for (let i = mine.length - 1; i >= 0; i--) if (!mine[i]!.spent) return mine[i];
    return undefined;
  }

  /** Ends and forgets a session. */
  drop(session: Session): void {
    this.#drop(session);
  }

  /**
   * Ends the sessions callers made under a grant that ended (revoked,
   * expired): each is refused at its next request with the grant's own
   * refusal, then forgotten (or at the next tidy).
   */
  endGrant(grantKid: string): void {
    this.#handshakes.delete(grantKid);
    for (const s of this.#byGrant.get(grantKid) ?? []) s.end();
  }

  /** Ends every session of a grant, both roles (the connection closed, or the grant was found ended). */
  dropGrant(grantKid: string): void {
    this.#handshakes.delete(grantKid);
    for (const s of [...this.#byId.values()]) if (s.grantKid === grantKid) this.#drop(s);
  }

  /** Ends every session. */
  clear(): void {
    for (const s of [...this.#byId.values()]) this.#drop(s);
  }

  #drop(session: Session): void {
    session.end();
    if (this.#byId.get(session.sid) === session) this.#byId.delete(session.sid);
    if (session.role !== 'server') return;
    const mine = this.#byGrant.get(session.grantKid);
    const i = mine === undefined ? -1 : mine.indexOf(session);
    if (i < 0) return;
    mine!.splice(i, 1);
    this.#servers--;
    if (mine!.length === 0) this.#byGrant.delete(session.grantKid);
  }

  /** Drops the spent sessions (past their lifetime or budget). */
  #sweep(): void {
    for (const s of [...this.#byId.values()]) if (s.spent) this.#drop(s);
  }

  /** Drops spent sessions now and then: called as requests come, at most once a minute. */
  tidy(): void {
    const now = this.#clock.now();
    if (now < this.#nextTidy) return;
    this.#nextTidy = now + 60_000;
    this.#sweep();
  }

  #nextTidy = 0;
}
