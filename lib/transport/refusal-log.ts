import type { WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';

/**
 * A request the node refused, as the observer lists it.
 *
 * @example
 * ```ts
 * for (const r of alice.recentRefusals()) console.log(r.code, r.status, r.path);
 * ```
 */
export interface Refusal {
  at: number;
  code: string;
  status: number;
  path: string;
  message: string;
  /** The key id the request said it was signed with (a grant's, or a peer's), if it could be read. */
  kid: string | null;
}

/** How many refusals are kept. */
const KEPT = 100;

/** The last {@link KEPT} refusals, oldest first. */
export class RefusalLog {
  readonly #clock: WallClock;
  readonly #entries: Refusal[] = [];

  constructor(clock: WallClock) {
    this.#clock = clock;
  }

  /** Notes a refusal of a request to `path` whose body was `jws` (its header's kid is kept, unverified). */
  note(err: WireError, path: string, jws?: string): void {
    this.#entries.push({
      at: this.#clock.now(),
      code: err.code,
      status: err.status,
      path,
      message: err.message,
      kid: jws === undefined ? null : claimedKid(jws),
    });
    if (this.#entries.length > KEPT) this.#entries.shift();
  }

  list(): Refusal[] {
    return [...this.#entries];
  }
}

/** The `kid` in the protected header of `jws`, if it has a readable one (nothing is verified: it is for the owner to read). */
function claimedKid(jws: string): string | null {
  const header = jws.slice(0, Math.min(jws.indexOf('.'), 1024));
  if (header.length === 0) return null;
  try {
    const kid = (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { kid?: unknown }).kid;
    return typeof kid === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(kid) ? kid : null;
  } catch {
    return null;
  }
}
