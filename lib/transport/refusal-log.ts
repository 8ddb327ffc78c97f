import type { WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';

/**
 * A request the node refused, as the observer lists it.
 *
 * @example
 * ```ts
 * for (const r of alice.recentRefusals()) console.log(r.code, r.status, r.path, r.source);
 * ```
 */
export interface Refusal {
  at: number;
  code: string;
  status: number;
  path: string;
  message: string;
  /** Who sent it: the remote address, or `proxy:<node id>` for a relayed request. */
  source: string;
  /** The key id the request said it was signed with (a grant's, or a peer's), if it could be read. */
  kid: string | null;
}

/** How many refusals are listed in all. */
const KEPT = 100;
/** How many are kept per source. */
const KEPT_PER_SOURCE = 20;
/** How much of a refused request's path is kept. */
const PATH_KEPT = 200;
/** How many sources are kept; the one refused longest ago goes first. */
const SOURCES = 50;

/**
 * The last refusals, kept per source: one sender that is refused over and
 * over rotates its own entries only, so it cannot flush the refusals of
 * others out of the observer. At most {@link KEPT_PER_SOURCE} per source and
 * {@link SOURCES} sources; {@link list} gives the last {@link KEPT}.
 */
export class RefusalLog {
  readonly #clock: WallClock;
  // source -> its refusals, oldest first; the map's order is the order sources were last refused in
  readonly #bySource = new Map<string, Refusal[]>();

  constructor(clock: WallClock) {
    this.#clock = clock;
  }

  /**
   * Notes a refusal of `path` from `source`, whose body was `jws` (its
   * header's kid is kept, unverified).
   */
  note(err: WireError, path: string, source = 'unknown', jws?: string): void {
    let entries = this.#bySource.get(source);
    if (entries === undefined) {
      entries = [];
      if (this.#bySource.size >= SOURCES) this.#bySource.delete(this.#bySource.keys().next().value!);
    } else {
      this.#bySource.delete(source);
    }
    this.#bySource.set(source, entries);
    entries.push({
      at: this.#clock.now(),
      code: err.code,
      status: err.status,
      // A path is the sender's to choose: what is kept of it is short, and printable.
      path: path.length > PATH_KEPT ? `${path.slice(0, PATH_KEPT)}…` : path,
      message: err.message,
      source,
      kid: jws === undefined ? null : claimedKid(jws),
    });
    if (entries.length > KEPT_PER_SOURCE) entries.shift();
  }

  /** The last refusals of every source, oldest first, at most {@link KEPT}. */
  list(): Refusal[] {
    const all = [...this.#bySource.values()].flat();
    all.sort((a, b) => a.at - b.at);
    return all.slice(-KEPT);
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
