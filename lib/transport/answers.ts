import { WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import type { ReplayWindow } from '../security/replay-window.js';
import { MESSAGE_TTL_S, type BaseClaims } from '../wire/claims.js';
import type { HttpResponse } from './http-client.js';

/**
 * Bounds of the answers a node keeps for resends: in all, and for one
 * grant (so that one grantee's large answers cannot push out everyone
 * else's).
 */
export interface AnswerLimits {
  /** Bytes of answers kept in all. Default 16 MiB. */
  maxBytes: number;
  /** Bytes of answers kept for one grant. Default 2 MiB. */
  maxBytesPerGrant: number;
  /** Answers kept in all. Default 10,000. */
  maxAnswers: number;
}

export const DEFAULT_ANSWER_LIMITS: Readonly<AnswerLimits> = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxBytesPerGrant: 2 * 1024 * 1024,
  maxAnswers: 10_000,
});

interface Kept {
  kid: string;
  /** The answer, once there is one. */
  answer: Promise<HttpResponse>;
  bytes: number;
  /** Epoch ms after which a resend could not pass the time check anyway. */
  until: number;
}

/**
 * At most once, and the first answer again: a request whose id this node
 * has admitted before (a caller's resend after a dead keep-alive socket or
 * a lost answer) is never run again. While its answer is kept, the resend
 * gets that answer (a resend of a request still running waits for it);
 * once it is not (a restart, or past the bounds), the replay log says what
 * became of it: `ERR_ALREADY_RAN` if it ran, `ERR_MAYBE_RAN` if it was
 * admitted and never answered (the node stopped meanwhile), and
 * `ERR_REPLAY` if it was refused.
 */
export class Answers {
  readonly #replay: ReplayWindow;
  readonly #clock: WallClock;
  readonly #limits: AnswerLimits;
  // In the order admitted, which is the order they can be forgotten in (one window for all).
  readonly #kept = new Map<string, Kept>();
  readonly #perGrant = new Map<string, number>();
  #bytes = 0;

  constructor(replay: ReplayWindow, clock: WallClock, limits: Partial<AnswerLimits> = {}) {
    this.#replay = replay;
    this.#clock = clock;
    this.#limits = { ...DEFAULT_ANSWER_LIMITS, ...limits };
  }

  /** How many answers are kept, and their bytes. */
  get stats(): { answers: number; bytes: number } {
    return { answers: this.#kept.size, bytes: this.#bytes };
  }

  /**
   * Runs `work` for a request admitted now under grant `kid`, or answers
   * its resend. Nothing of a resend is run.
   */
  async once(claims: BaseClaims, kid: string, work: () => Promise<HttpResponse>): Promise<HttpResponse> {
    this.#forget();
    if (!this.#replay.tryAdmit(claims)) return this.#resend(claims.id, kid);
    return this.#run(claims, kid, work, (id, kept, answer) => this.#settle(id, kept, answer));
  }

  /** Runs `work`, its answer kept for resends while it runs, then `after` it settled. */
  async #run(
    claims: BaseClaims,
    kid: string,
    work: () => Promise<HttpResponse>,
    after: (id: string, kept: Kept, answer: HttpResponse | undefined) => void,
  ): Promise<HttpResponse> {
    const answer = work();
    const kept: Kept = { kid, answer, bytes: 0, until: (claims.exp + MESSAGE_TTL_S) * 1000 };
    this.#kept.set(claims.id, kept);
    let settled: HttpResponse | undefined;
    try {
      settled = await answer;
      return settled;
    } finally {
      after(claims.id, kept, settled);
    }
  }

  /**
   * Runs `work` for a request in a session whose sequence number is new
   * (`fresh`), or answers its resend with the first answer while that is
   * kept (`ERR_MAYBE_RAN` once it is not: a session's requests are not in
   * the replay log, and a restart ends the session anyway).
   */
  async inSession(
    claims: BaseClaims,
    kid: string,
    fresh: boolean,
    work: () => Promise<HttpResponse>,
  ): Promise<HttpResponse> {
    this.#forget();
    if (!fresh) {
      const kept = this.#kept.get(claims.id);
      if (kept !== undefined && kept.kid === kid) return kept.answer;
      // Taken before, and its answer is not kept: it may have run, and is not run again.
      throw new WireError(
        'ERR_MAYBE_RAN',
        409,
        'this request was taken before and its answer is no longer kept; it may have run, and is not run again',
      );
    }
    return this.#run(claims, kid, work, (id, kept, answer) => this.#keep(id, kept, answer));
  }

  async #resend(id: string, kid: string): Promise<HttpResponse> {
    const kept = this.#kept.get(id);
    // The same id under another key is not that caller's resend: it learns nothing of the answer.
    if (kept !== undefined && kept.kid === kid) return kept.answer;
    if (kept === undefined) {
      const outcome = this.#replay.outcome(id);
      if (outcome === 'ran') {
        throw new WireError('ERR_ALREADY_RAN', 409, 'this request ran already; its answer is no longer kept');
      }
      if (outcome === null) {
        throw new WireError(
          'ERR_MAYBE_RAN',
          409,
          'this request was taken before the node stopped, and may have run then; it is not run again',
        );
      }
    }
    throw new WireError('ERR_REPLAY', 409, 'this message was already received');
  }

  /** Records the outcome, and keeps the answer while it fits. */
  #settle(id: string, kept: Kept, answer: HttpResponse | undefined): void {
    const ran = answer !== undefined && answer.status < 300;
    this.#replay.settle(id, ran ? 'ran' : 'refused');
    this.#keep(id, kept, answer);
  }

  /** Keeps the answer for resends while it fits the bounds. */
  #keep(id: string, kept: Kept, answer: HttpResponse | undefined): void {
    if (this.#kept.get(id) !== kept) return;
    const bytes = answer === undefined ? 0 : 64 + answer.text.length;
    const grant = this.#perGrant.get(kept.kid) ?? 0;
    if (
      answer === undefined ||
      grant + bytes > this.#limits.maxBytesPerGrant ||
      this.#bytes + bytes > this.#limits.maxBytes ||
      this.#kept.size > this.#limits.maxAnswers
    ) {
      // Not kept: a resend is answered from the log (it ran, or it was refused).
      this.#kept.delete(id);
      return;
    }
    kept.bytes = bytes;
    this.#bytes += bytes;
    this.#perGrant.set(kept.kid, grant + bytes);
  }

  /** Forgets answers no resend could ask for any more. */
  #forget(): void {
    const now = this.#clock.now();
    for (const [id, kept] of this.#kept) {
      if (kept.until > now) break;
      this.#drop(id, kept);
    }
  }

  #drop(id: string, kept: Kept): void {
    this.#kept.delete(id);
    if (kept.bytes === 0) return;
    this.#bytes -= kept.bytes;
    const left = (this.#perGrant.get(kept.kid) ?? 0) - kept.bytes;
    if (left <= 0) this.#perGrant.delete(kept.kid);
    else this.#perGrant.set(kept.kid, left);
  }
}
