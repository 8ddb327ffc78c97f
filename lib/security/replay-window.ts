import type Database from 'better-sqlite3';
import { WireError } from '../errors.js';
import { epochSeconds, type WallClock } from '../runtime/clock.js';
import { MESSAGE_TTL_S, type BaseClaims } from '../wire/claims.js';

/**
 * Where accepted message ids are kept: the {@link GrantStore} of a node,
 * the store of a proxy. Both use {@link SqliteReplayLog} unless a store of
 * another kind brings its own.
 */
export interface ReplayLog {
  /** Records message `id` as seen until `expiresAtS` (epoch seconds); false if it was already there. */
  remember(id: string, expiresAtS: number): boolean;
  /** Forgets ids whose time is past `nowS`. */
  prune(nowS: number): void;
}

/**
 * The replay window, for node and proxy alike: a message id is accepted
 * once, for as long as a message with its `exp` could still pass the time
 * check, and the log forgets it after that.
 */
export class ReplayWindow {
  readonly #log: ReplayLog;
  readonly #clock: WallClock;

  constructor(log: ReplayLog, clock: WallClock) {
    this.#log = log;
    this.#clock = clock;
  }

  /** Accepts `claims.id` once; a second time is `ERR_REPLAY` (409). */
  admit(claims: BaseClaims): void {
    if (!this.#log.remember(claims.id, claims.exp + MESSAGE_TTL_S)) {
      throw new WireError('ERR_REPLAY', 409, 'this message was already received');
    }
  }

  /** Forgets ids that could no longer pass the time check anyway. */
  prune(): void {
    this.#log.prune(epochSeconds(this.#clock));
  }
}

/** A {@link ReplayLog} in a `seen` table of an SQLite database (the node's `wtd.db`, the proxy's `proxy.db`). */
export class SqliteReplayLog implements ReplayLog {
  readonly #remember;
  readonly #prune;

  constructor(db: Database.Database) {
    db.exec('CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)');
    this.#remember = db.prepare('INSERT OR IGNORE INTO seen (id, expires_at) VALUES (?, ?)');
    this.#prune = db.prepare('DELETE FROM seen WHERE expires_at < ?');
  }

  remember(id: string, expiresAtS: number): boolean {
    return this.#remember.run(id, expiresAtS).changes === 1;
  }

  prune(nowS: number): void {
    this.#prune.run(nowS);
  }
}
