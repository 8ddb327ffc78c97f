import type { KeyObject } from 'node:crypto';
import { CallTimeoutError, NodeDownError, WireError, WtdError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import { checkTime } from '../security/authenticate.js';
import {
  clientSession,
  type Session,
  type SessionReply,
  type SessionRequest,
  type Sessions,
} from '../security/sessions.js';
import { newClaims, type CallClaims, type ClaimsOf, type MessageKind, type SessionOffer } from '../wire/claims.js';
import { isSessionMessage, newEphemeral, readSessionHeader, SESSION_TYP, type SessionHeader } from '../wire/session.js';
import type { Signer } from './identity.js';
import type { HttpResponse } from './http-client.js';
import type { Link } from './link.js';
import { signedReply } from './signed-reply.js';
import { refusalFrom } from './refusals.js';

/** How long the first request of a session may take, at most, in ms. */
const HANDSHAKE_TIMEOUT_MS = 5000;

/** What a client session needs: whom it talks to, with which grant, and where sessions are kept. */
export interface ClientSessionDeps {
  link: Link;
  /** This node's id, and the other node's id, key and key id. */
  nodeId: string;
  peerId: string;
  peerKey: KeyObject;
  peerKid: string;
  /** The grant's key id, and its signer (for the first request of each session). */
  grantKid: string;
  signer: Signer;
  clock: WallClock;
  sessions: Sessions;
}

/** The offer a node answers `PUT /session` with. */
interface Offer {
  sid: string;
  epk: string;
  ttlMs: number;
  budget: number;
}

/**
 * The caller's side of the sessions of one grant with one node: the first
 * request (`PUT /session`, signed with the grant's key, carrying an
 * ephemeral X25519 key) agrees on keys with the node, whose signed answer
 * carries its own; every later request is sealed in the session
 * ({@link signer}), and every reply must be sealed in it too (a reply in
 * the clear to a sealed request is refused: no downgrade). Near its
 * lifetime or budget, or when the node says it is gone (it restarted),
 * the next request makes a new one first; a request refused that way did
 * not run and is sent again in the new session.
 */
export class ClientSession {
  readonly #deps: ClientSessionDeps;
  #current: Session | undefined;
  /** The one before, kept until spent (the node may still send in it for a moment), then dropped. */
  #previous: Session | undefined;
  #pending: Promise<Session> | undefined;
  /** What each request was sealed in, by its claims: its reply is opened with that. */
  readonly #sealed = new WeakMap<object, { session: Session; seq: number }>();
  #closed = false;
  /** Seals a request in the session, making one first when there is none (or it is ending). */
  readonly signer: Signer;

  constructor(deps: ClientSessionDeps) {
    this.#deps = deps;
    const signer = (async <K extends MessageKind>(_kind: K, claims: ClaimsOf[K]): Promise<string> => {
      const c = claims as unknown as CallClaims;
      const session = await this.#session();
      const request: SessionRequest = {
        path: c.path,
        body: c.body,
        ...(c.mission === undefined ? {} : { mission: c.mission }),
        ...(c.cast === true ? { cast: true as const } : {}),
        ...(c.timeout === undefined ? {} : { timeout: c.timeout }),
      };
      const { text, seq } = session.sealRequest(request, c.deadline);
      this.#sealed.set(claims, { session, seq });
      return text;
    }) as Signer;
    signer.renew = async (claims, res) => {
      const sealed = this.#sealed.get(claims);
      if (sealed === undefined || this.#closed) return false;
      if (!(await this.#proven(res, sealed.session.sid, sealed.seq))) return false;
      this.#lost(sealed.session);
      return true;
    };
    this.signer = signer;
  }

  /**
   * Opens the reply to the request signed for `claims`: it must be sealed
   * in the same session, as the answer to that request's sequence number
   * (`ERR_BAD_REPLY` otherwise, and for a reply in the clear).
   */
  openReply(claims: object, text: string): SessionReply {
    return this.#open(claims, text, SESSION_TYP.reply, (session, seq, header) => session.openReply(seq, header, text));
  }

  /**
   * Opens frame `f` of the streamed answer to the request signed for
   * `claims` (`PUT /calls`): sealed in the same session, for that request's
   * sequence number and that place in the stream, in its time window
   * (`ERR_BAD_REPLY` otherwise).
   */
  openFrame(claims: object, f: number, text: string): unknown {
    return this.#open(claims, text, SESSION_TYP.frame, (session, seq, header) =>
      session.openFrame(seq, f, header, text),
    );
  }

  /** What answers the request signed for `claims`, of JWE type `typ`, opened by `open` and in its time window. */
  #open<T>(
    claims: object,
    text: string,
    typ: string,
    open: (session: Session, seq: number, header: SessionHeader) => T,
  ): T {
    const sealed = this.#sealed.get(claims);
    if (sealed === undefined || !isSessionMessage(text)) {
      throw new WireError('ERR_BAD_REPLY', 502, 'a request in a session was answered outside it');
    }
    let header;
    try {
      header = readSessionHeader(text, typ);
    } catch (err) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the answer is not a session message', { cause: err });
    }
    const opened = open(sealed.session, sealed.seq, header);
    try {
      checkTime(header, this.#deps.clock);
    } catch (err) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the answer is out of its time window', { cause: err });
    }
    return opened;
  }

  /** Ends the sessions: nothing more is sealed in them. */
  close(): void {
    this.#closed = true;
    for (const s of [this.#current, this.#previous]) if (s !== undefined) this.#deps.sessions.drop(s);
    this.#current = undefined;
    this.#previous = undefined;
  }

  /** Whether a session-lost refusal carries the node's signed word for request `seq` of session `sid`. */
  async #proven(res: HttpResponse, sid: string, seq: number): Promise<boolean> {
    const d = this.#deps;
    try {
      const proof = (JSON.parse(res.text) as { proof?: unknown }).proof;
      if (typeof proof !== 'string') return false;
      const from = { kid: d.peerKid, key: d.peerKey, id: d.peerId };
      const claims = await signedReply(proof, from, { aud: d.grantKid }, d.clock);
      const lost = (claims.body as { lost?: { sid?: unknown; seq?: unknown } }).lost;
      return lost?.sid === sid && lost.seq === seq;
    } catch {
      return false;
    }
  }

  #lost(session: Session): void {
    this.#deps.sessions.drop(session);
    if (this.#current === session) this.#current = undefined;
  }

  #session(): Promise<Session> {
    if (this.#closed) return Promise.reject(new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed'));
    const current = this.#current;
    if (current !== undefined && !current.ending) return Promise.resolve(current);
    if (this.#pending === undefined) {
      // Shared by every request waiting for it: its own timeout, not the first caller's deadline.
      const pending = this.#handshake(HANDSHAKE_TIMEOUT_MS);
      this.#pending = pending;
      pending.then(
        () => {
          if (this.#pending === pending) this.#pending = undefined;
        },
        () => {
          if (this.#pending === pending) this.#pending = undefined;
        },
      );
    }
    return this.#pending;
  }

  async #handshake(timeoutMs: number): Promise<Session> {
    const d = this.#deps;
    const mine = newEphemeral();
    const path = '/session';
    const claims = newClaims<'call'>(d.clock, {
      aud: d.peerId,
      iss: d.nodeId,
      method: 'PUT',
      path,
      body: { epk: mine.publicKey } as never,
    });
    let res;
    try {
      res = await d.link.request(path, await d.signer('call', claims), timeoutMs);
    } catch (err) {
      // The call itself was not sent: whatever became of its session's first request, it did not run.
      // (A connection that failed once the first request was written: the node is going down. No answer in time: a timeout.)
      if (err instanceof WtdError && err.code === 'ERR_MAYBE_RAN') {
        if (err.cause !== undefined) throw new NodeDownError(d.link.key, { cause: err.cause });
        throw new CallTimeoutError(`${d.link.key}${path}`, timeoutMs);
      }
      if (err instanceof WtdError) throw err;
      throw new NodeDownError(d.link.key, { cause: err });
    }
    if (res.status !== 200 || !res.contentType.startsWith('application/jose')) throw refusalFrom(res);
    const from = { kid: d.peerKid, key: d.peerKey, id: d.peerId };
    const reply = await signedReply(res.text, from, { aud: d.nodeId, id: claims.id }, d.clock);
    const offer = (reply.body as { session?: Partial<Offer> }).session;
    if (
      offer === undefined ||
      typeof offer.sid !== 'string' ||
      !/^[A-Za-z0-9_-]{22}$/.test(offer.sid) ||
      !(Number(offer.ttlMs) > 0) ||
      !(Number(offer.budget) > 0)
    ) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the answer carries no session');
    }
    let session: Session;
    try {
      session = clientSession({
        mine,
        offer: offer as SessionOffer,
        client: d.nodeId,
        server: d.peerId,
        grantKid: d.grantKid,
        peerKid: d.peerKid,
        clock: d.clock,
      });
    } catch (err) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the session key in the answer is not usable', { cause: err });
    }
    if (this.#closed) throw new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed');
    // The one it replaces is kept until spent (the other node may still send in it for a moment);
    // older ones go, whatever lifetime the other node claimed for them.
    d.sessions.tidy();
    d.sessions.addClient(session);
    if (this.#previous !== undefined) d.sessions.drop(this.#previous);
    this.#previous = this.#current;
    this.#current = session;
    return session;
  }
}
