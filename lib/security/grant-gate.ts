import type { KeyObject } from 'node:crypto';
import { RateLimitedError, WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import type { GrantRecord, GrantStore } from './grant-store.js';
import { isUsable, usableGrant } from './grants.js';
import { importPublic } from './keys.js';
import { RateLimiter } from './rate-limiter.js';

/**
 * The one place a node decides whether a grant may be used now: it exists,
 * is not revoked, has not expired, and has a token left in its rate. A grant
 * found revoked or expired (here or by another program writing the same
 * store) is reported once to `onEnded`, so that whatever was kept for it
 * can go.
 */
export class GrantGate {
  readonly #store: GrantStore;
  readonly #clock: WallClock;
  readonly #limiter = new RateLimiter();
  readonly #onEnded: (kid: string) => void;
  #epoch = 0;
  // Grantees' keys, imported once per grant (dropped when it ends).
  readonly #keys = new Map<string, KeyObject>();

  constructor(store: GrantStore, clock: WallClock, onEnded: (kid: string) => void) {
    this.#store = store;
    this.#clock = clock;
    this.#onEnded = onEnded;
  }

  /** The grant `kid` names, if usable now; else its refusal (`ERR_UNKNOWN_KEY`, `ERR_GRANT_REVOKED`, `ERR_GRANT_EXPIRED`). */
  usable(kid: string): GrantRecord {
    const grant = this.#store.getGrant(kid);
    try {
      return usableGrant(grant, this.#clock.now());
    } catch (err) {
      if (grant !== undefined) this.ended(kid);
      throw err;
    }
  }

  /** The public key of `grant`, imported once. */
  async keyOf(grant: GrantRecord): Promise<KeyObject> {
    let key = this.#keys.get(grant.kid);
    if (key === undefined) {
      key = (await importPublic(grant.publicJwk)).key;
      this.#keys.set(grant.kid, key);
    }
    return key;
  }

  /** True while grant `kid` may be used (a pid handed under it may be answered). */
  isUsable(kid: string): boolean {
    return isUsable(this.#store.getGrant(kid), this.#clock.now());
  }

  /** Takes one token of `grant`'s rate, or refuses with {@link RateLimitedError} (429). */
  take(grant: GrantRecord): void {
    const wait = this.#limiter.take(grant.kid, grant.rate, this.#clock.now());
    if (wait > 0) throw new RateLimitedError(Math.max(1, Math.ceil(wait / 1000)));
  }

  /** The grant `kid` names if it is usable now, else undefined (no refusal, nothing forgotten). */
  grantOf(kid: string): GrantRecord | undefined {
    const grant = this.#store.getGrant(kid);
    return isUsable(grant, this.#clock.now()) ? grant : undefined;
  }

  /**
   * Takes one token for a pid message under `grant` (its message rate, or
   * else its rate): 0 if taken, else the ms until one is free.
   */
  messageWait(grant: GrantRecord): number {
    return grant.messageRate === null
      ? this.#limiter.take(grant.kid, grant.rate, this.#clock.now())
      : this.#limiter.take(messageBucket(grant.kid), grant.messageRate, this.#clock.now());
  }

  /** {@link messageWait}, refusing with {@link RateLimitedError} (429) when no token is left. */
  takeMessage(grant: GrantRecord): void {
    const wait = this.messageWait(grant);
    if (wait > 0) throw new RateLimitedError(Math.max(1, Math.ceil(wait / 1000)));
  }

  /**
   * Checks that a request under `grant` comes from the node it is bound to:
   * the one it was made for, or for an issued key the first that used it
   * (bound now if none did). Else `ERR_WRONG_ISSUER` (403).
   */
  checkIssuer(grant: GrantRecord, iss: string): void {
    const bound = grant.iss ?? this.#store.bindIssuer(grant.kid, iss);
    if (bound !== iss) {
      throw new WireError(
        'ERR_WRONG_ISSUER',
        403,
        'this grant is bound to another node: a grant file is used by one node (its data directory) only',
      );
    }
  }

  /** Counts an accepted use of `kid`. */
  recordUse(kid: string): void {
    this.#store.recordUse(kid, this.#clock.now());
  }

  /** Tokens left of grant `kid` now, out of its burst. */
  tokens(grant: GrantRecord): number {
    return Math.floor(this.#limiter.peek(grant.kid, grant.rate, this.#clock.now()));
  }

  /**
   * Moves on each time a grant ends in this program: a request whose grant
   * was read at another epoch must read it again before it runs user code
   * (a revocation stops every request that has not started yet).
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Grant `kid` can no longer be used: forget its bucket and key, and tell the owner of the rest. */
  ended(kid: string): void {
    this.#epoch++;
    this.#limiter.forget(kid);
    this.#limiter.forget(messageBucket(kid));
    this.#keys.delete(kid);
    this.#onEnded(kid);
  }
}

/** The rate bucket of a grant's own message rate. */
function messageBucket(kid: string): string {
  return `${kid}/messages`;
}

/** The refusal of a request whose grant does not cover what it asks for. */
export function notGranted(message = 'this grant does not cover that target'): WireError {
  return new WireError('ERR_MISSION_NOT_GRANTED', 403, message);
}
