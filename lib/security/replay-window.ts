import type Database from 'better-sqlite3';
import { WireError } from '../errors.js';
import { epochSeconds, type WallClock } from '../runtime/clock.js';
import { MESSAGE_TTL_S, type BaseClaims } from '../wire/claims.js';

/**
 * Where accepted message ids are kept: the {@link GrantStore} of a node,
 * the store of a proxy. Both use an SQLite table (`seen`) unless a store
 * of another kind brings its own.
 *
 * @example
 * ```ts
 * class MemoryLog implements ReplayLog {
 *   readonly seen = new Map<string, RequestOutcome | null>();
 *   remember(id: string) { return this.seen.has(id) ? false : (this.seen.set(id, null), true); }
 *   prune() {}
 * }
 * ```
 */
export interface ReplayLog {
  /** Records message `id` as seen until `expiresAtS` (epoch seconds); false if it was already there. */
  remember(id: string, expiresAtS: number): boolean;
  /** Forgets ids whose time is past `nowS`. */
  prune(nowS: number): void;
  /**
   * Records what became of request `id` once it was answered: it ran
   * (`'ran'`), or it was refused before running (`'refused'`). A log that
   * keeps no outcomes may leave this out: a resend after a restart is then
   * refused as a bare replay.
   */
  settle?(id: string, outcome: RequestOutcome): void;
  /** What {@link settle} recorded for `id`: null while it was admitted and not yet answered; undefined if unknown. */
  outcome?(id: string): RequestOutcome | null | undefined;
}

/**
 * What became of an admitted request, as the replay log keeps it across a
 * restart: a resend of one that `'ran'` is refused with `ERR_ALREADY_RAN`.
 *
 * @example
 * ```ts
 * store.settle?.(claims.id, 'ran');
 * ```
 */
export type RequestOutcome = 'ran' | 'refused';

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

  /**
   * Admits `claims.id` if it is new (true); false if it was seen already,
   * for the caller to answer the resend (see {@link outcome}).
   */
  tryAdmit(claims: BaseClaims): boolean {
    return this.#log.remember(claims.id, claims.exp + MESSAGE_TTL_S);
  }

  /** Records what became of admitted request `id` (kept as long as its id is). */
  settle(id: string, outcome: RequestOutcome): void {
    this.#log.settle?.(id, outcome);
  }

  /** What became of request `id` as the log kept it: null if it was admitted and never settled (it may have run). */
  outcome(id: string): RequestOutcome | null | undefined {
    return this.#log.outcome?.(id);
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
  readonly #settle;
  readonly #outcome;

  constructor(db: Database.Database) {
    db.exec('CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, outcome TEXT)');
    // A log written before outcomes were kept gains the column.
    const columns = new Set((db.pragma('table_info(seen)') as { name: string }[]).map((c) => c.name));
    if (!columns.has('outcome')) db.exec('ALTER TABLE seen ADD COLUMN outcome TEXT');
    this.#remember = db.prepare('INSERT OR IGNORE INTO seen (id, expires_at) VALUES (?, ?)');
    this.#prune = db.prepare('DELETE FROM seen WHERE expires_at < ?');
    this.#settle = db.prepare('UPDATE seen SET outcome = ? WHERE id = ?');
    this.#outcome = db.prepare<[string], { outcome: string | null }>('SELECT outcome FROM seen WHERE id = ?');
  }

  settle(id: string, outcome: RequestOutcome): void {
    this.#settle.run(outcome, id);
  }

  outcome(id: string): RequestOutcome | null | undefined {
    const row = this.#outcome.get(id);
    if (row === undefined) return undefined;
    return row.outcome === 'ran' || row.outcome === 'refused' ? row.outcome : null;
  }

  remember(id: string, expiresAtS: number): boolean {
    return this.#remember.run(id, expiresAtS).changes === 1;
  }

  prune(nowS: number): void {
    this.#prune.run(nowS);
  }
}
