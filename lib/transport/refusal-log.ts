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

  note(err: WireError, path: string): void {
    this.#entries.push({ at: this.#clock.now(), code: err.code, status: err.status, path, message: err.message });
    if (this.#entries.length > KEPT) this.#entries.shift();
  }

  list(): Refusal[] {
    return [...this.#entries];
  }
}
