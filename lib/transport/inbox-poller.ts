import type { KeyObject } from 'node:crypto';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/node.js';
import { newClaims, type InboxMessage, type ReplyClaims } from '../wire/claims.js';
import type { Signer } from './identity.js';
import type { Link } from './link.js';
import { INBOX_HOLD_MS } from './pid-routes.js';
import { refusalFrom, sessionLost } from './refusals.js';
import type { ClientSession } from './client-session.js';
import { signedReply } from './signed-reply.js';
import { WireError } from '../errors.js';

/** How long to wait before polling again after the node could not be reached or refused. */
const RETRY_MS = 1000;
/** The longest wait between two polls that failed. */
const MAX_RETRY_MS = 30_000;
/** The client's timeout for a held poll: the node's hold, plus a margin. */
const POLL_TIMEOUT_MS = INBOX_HOLD_MS + 10_000;

/** What a poller needs: whom it polls, with which key, and where what it takes goes. */
export interface InboxPollerDeps {
  link: Link;
  /** This node's id (the `iss` of the polls) and the polled node's id and key. */
  nodeId: string;
  peerId: string;
  peerKey: KeyObject;
  peerKid: string;
  signer: Signer;
  /** The session the signer seals in, when there is one: the answers are sealed in it too. */
  session?: ClientSession;
  clock: WallClock;
  logger: Logger;
  /** Delivers one message taken from the inbox to a local pid. */
  receive(m: InboxMessage): void;
  /** Told once when the polled node refuses the grant (401/403): nothing will come this way again. */
  ended?(): void;
  /** Told once an outage has lasted `downAfterMs`: polls kept failing (the node is down, or cannot be reached). */
  unreachable?(): void;
  /** How long polls may fail before `unreachable`, in ms. Default 3000. */
  downAfterMs?: number;
}

/**
 * The long poll a node keeps open to a node it called directly once it
 * handed that node a pid: the messages to its pids wait in the other node's
 * outbox for the grant, and come back as answers to this poll (`PUT
 * /inbox`, signed with the grant's key, each answer signed by the other
 * node). The other node never has to open a connection back. Each message
 * is delivered once, in order: the next poll acknowledges the last `seq`.
 */
export class InboxPoller {
  readonly #deps: InboxPollerDeps;
  #ack = 0;
  #running = false;
  #stopped = false;
  #retry: ClockTimer | undefined;
  #outage: ClockTimer | undefined;
  readonly #abort = new AbortController();

  constructor(deps: InboxPollerDeps) {
    this.#deps = deps;
  }

  /** Starts polling, if it is not already. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#loop();
  }

  /** Stops polling; a held poll is abandoned. */
  stop(): void {
    this.#stopped = true;
    this.#retry?.cancel();
    this.#outage?.cancel();
    this.#abort.abort();
  }

  async #loop(): Promise<void> {
    let wait = RETRY_MS;
    let failing = false;
    while (!this.#stopped) {
      try {
        await this.#pollOnce();
        wait = RETRY_MS;
        failing = false;
        this.#outage?.cancel();
        this.#outage = undefined;
      } catch (err) {
        if (this.#stopped) return;
        if (err instanceof WireError && (err.status === 401 || err.status === 403)) {
          // The grant ended, or was never ours to poll with: nothing will come this way again.
          this.#deps.logger.error(
            `stopped polling node ${this.#deps.peerId} for messages: ${err.message} [${err.code}]`,
          );
          this.#stopped = true;
          this.#outage?.cancel();
          this.#deps.ended?.();
          return;
        }
        // Logged once per outage; tried again, less and less often.
        if (!failing) {
          this.#deps.logger.error(`could not poll node ${this.#deps.peerId} for messages: ${(err as Error).message}`);
          // Still failing when the down time has passed: whoever watches that node hears it is down.
          this.#outage = this.#deps.clock.setTimer(() => {
            if (!this.#stopped) this.#deps.unreachable?.();
          }, this.#deps.downAfterMs ?? 3000);
        }
        failing = true;
        await new Promise<void>((resolve) => {
          this.#retry = this.#deps.clock.setTimer(resolve, wait);
        });
        wait = Math.min(wait * 2, MAX_RETRY_MS);
      }
    }
  }

  async #pollOnce(): Promise<void> {
    const d = this.#deps;
    const path = '/inbox';
    const claims = newClaims<'call'>(d.clock, {
      aud: d.peerId,
      iss: d.nodeId,
      method: 'PUT',
      path,
      body: { ack: this.#ack } as never,
    });
    const res = await d.link.request(path, await d.signer('call', claims), POLL_TIMEOUT_MS, this.#abort.signal);
    // The node no longer holds the session (it restarted): the next poll goes in a new one.
    if (sessionLost(res) && (await d.signer.renew?.(claims, res)) === true) return;
    if (res.status !== 200 || !res.contentType.startsWith('application/jose')) throw refusalFrom(res);
    let reply: Pick<ReplyClaims, 'body'>;
    if (d.session !== undefined) reply = d.session.openReply(claims, res.text);
    else {
      const from = { kid: d.peerKid, key: d.peerKey, id: d.peerId };
      // An answer that fails these checks is retried, not taken for the end of the grant.
      reply = await signedReply(res.text, from, { aud: d.nodeId, id: claims.id }, d.clock).catch((err: unknown) => {
        throw new Error((err as Error).message, { cause: err });
      });
    }
    const body = reply.body as { inbox?: unknown };
    if (!Array.isArray(body.inbox)) throw new Error('the answer carries no messages');
    for (const m of body.inbox as InboxMessage[]) {
      // A message taken already (its answer was lost, and it came again) is not delivered twice.
      if (this.#stopped || !Number.isSafeInteger(m?.seq) || m.seq <= this.#ack) continue;
      this.#ack = m.seq;
      try {
        d.receive(m);
      } catch (err) {
        d.logger.error(`a message from node ${d.peerId} was dropped: ${(err as Error).message}`);
      }
    }
  }
}
