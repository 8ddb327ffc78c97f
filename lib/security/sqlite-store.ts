import type Database from 'better-sqlite3';
import type { JWK } from 'jose';
import { WtdError } from '../errors.js';
import type { GrantRecord, GrantStore } from './grant-store.js';
import { SqliteReplayLog, type RequestOutcome } from './replay-window.js';
import { flush, openDatabase } from './sqlite.js';

interface GrantRow {
  kid: string;
  label: string;
  missions: string;
  public_jwk: string;
  rate: string;
  expires_at: number | null;
  created_at: number;
  revoked_at: number | null;
  uses: number;
  last_used_at: number | null;
  iss: string | null;
  message_rate: string | null;
}

function toRecord(row: GrantRow): GrantRecord {
  return {
    kid: row.kid,
    label: row.label,
    missions: JSON.parse(row.missions) as string[],
    publicJwk: JSON.parse(row.public_jwk) as JWK,
    rate: JSON.parse(row.rate) as GrantRecord['rate'],
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    uses: row.uses,
    lastUsedAt: row.last_used_at,
    iss: row.iss,
    messageRate: row.message_rate === null ? null : (JSON.parse(row.message_rate) as GrantRecord['rate']),
  };
}

/**
 * The default {@link GrantStore}: one SQLite file, `wtd.db`, in the node's
 * data directory, readable by its owner only (it holds the node's private
 * key). Pass `':memory:'` for a store that lives only as long as the process.
 *
 * @example
 * ```ts
 * const store = new SqliteGrantStore('./alice-data'); // wtd.db inside, mode 0600
 * const alice = await WtdNode.start({ name: 'alice', dataDir: './alice-data', store });
 * ```
 */
export class SqliteGrantStore implements GrantStore {
  readonly #db: Database.Database;
  // Grants read on the request path, kept in step with every write this store makes.
  readonly #cache = new Map<string, GrantRecord>();
  readonly #statements;
  readonly #replay: SqliteReplayLog;

  constructor(dataDir: string) {
    // Every accepted request writes its replay id and a use count, not
    // flushed one by one; grants, revocations and the node key are flushed
    // when written (see #flush).
    this.#db = openDatabase(
      dataDir,
      'wtd.db',
      `
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS grants (
          kid TEXT PRIMARY KEY, label TEXT NOT NULL, missions TEXT NOT NULL, public_jwk TEXT NOT NULL,
          rate TEXT NOT NULL, expires_at INTEGER, created_at INTEGER NOT NULL, revoked_at INTEGER,
          uses INTEGER NOT NULL DEFAULT 0, last_used_at INTEGER, iss TEXT, message_rate TEXT);
      `,
      'grant store',
    );
    const db = this.#db;
    // Stores written before grants bound their issuer and had a message rate gain the two columns.
    const columns = new Set((db.pragma('table_info(grants)') as { name: string }[]).map((c) => c.name));
    if (!columns.has('iss')) db.exec('ALTER TABLE grants ADD COLUMN iss TEXT');
    if (!columns.has('message_rate')) db.exec('ALTER TABLE grants ADD COLUMN message_rate TEXT');
    this.#replay = new SqliteReplayLog(db);
    this.#statements = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      addGrant: db.prepare(
        `INSERT INTO grants (kid, label, missions, public_jwk, rate, expires_at, created_at, revoked_at, uses, last_used_at,
           iss, message_rate)
         VALUES (@kid, @label, @missions, @public_jwk, @rate, @expires_at, @created_at, @revoked_at, @uses, @last_used_at,
           @iss, @message_rate)`,
      ),
      getGrant: db.prepare<[string], GrantRow>('SELECT * FROM grants WHERE kid = ?'),
      listGrants: db.prepare<[], GrantRow>('SELECT * FROM grants ORDER BY created_at'),
      revoke: db.prepare('UPDATE grants SET revoked_at = ? WHERE kid = ? AND revoked_at IS NULL'),
      exists: db.prepare<[string], { kid: string }>('SELECT kid FROM grants WHERE kid = ?'),
      bindIssuer: db.prepare('UPDATE grants SET iss = ? WHERE kid = ? AND iss IS NULL'),
      recordUse: db.prepare('UPDATE grants SET uses = uses + ?, last_used_at = ? WHERE kid = ?'),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
    };
  }

  getNodeKey(): JWK | undefined {
    const row = this.#statements.getMeta.get('node_key');
    return row === undefined ? undefined : (JSON.parse(row.value) as JWK);
  }

  setNodeKey(jwk: JWK): void {
    this.#statements.setMeta.run('node_key', JSON.stringify(jwk));
    this.#flush();
  }

  /** Makes what was just written survive a power cut, not only a crash of this program. */
  #flush(): void {
    flush(this.#db);
  }

  addGrant(g: GrantRecord): void {
    try {
      this.#statements.addGrant.run({
        kid: g.kid,
        label: g.label,
        missions: JSON.stringify(g.missions),
        public_jwk: JSON.stringify(g.publicJwk),
        rate: JSON.stringify(g.rate),
        expires_at: g.expiresAt,
        created_at: g.createdAt,
        revoked_at: g.revokedAt,
        uses: g.uses,
        last_used_at: g.lastUsedAt,
        iss: g.iss,
        message_rate: g.messageRate === null ? null : JSON.stringify(g.messageRate),
      });
      this.#flush();
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new WtdError('ERR_GRANT_EXISTS', `a grant for key ${g.kid} already exists; revoke it or use a new key`);
      }
      throw new WtdError('ERR_STORE', `could not save the grant: ${(err as Error).message}`, { cause: err });
    }
  }

  getGrant(kid: string): GrantRecord | undefined {
    this.#syncCache();
    let grant = this.#cache.get(kid);
    if (grant === undefined) {
      if (this.#uses.size > 0) this.#writeUses();
      const row = this.#statements.getGrant.get(kid);
      if (row === undefined) return undefined;
      grant = toRecord(row);
      this.#cache.set(kid, grant);
    }
    return grant;
  }

  // Another program (the wtd command, say) may grant or revoke in the same
  // file: SQLite's data_version changes when it does, and the cache is dropped.
  #dataVersion = -1;
  #synced = false;

  #syncCache(): void {
    // Once per turn of the event loop: another program's grant or revoke is seen by the next turn.
    if (this.#synced) return;
    this.#synced = true;
    setImmediate(() => {
      this.#synced = false;
    });
    const version = this.#statements.dataVersion.get() as number;
    if (version !== this.#dataVersion) {
      this.#dataVersion = version;
      this.#cache.clear();
    }
  }

  listGrants(): GrantRecord[] {
    this.#writeUses();
    return this.#statements.listGrants.all().map(toRecord);
  }

  revoke(kid: string, at: number): boolean {
    if (this.#statements.exists.get(kid) === undefined) return false;
    this.#statements.revoke.run(at, kid);
    this.#cache.delete(kid);
    this.#flush();
    return true;
  }

  bindIssuer(kid: string, iss: string): string | undefined {
    this.#statements.bindIssuer.run(iss, kid);
    this.#cache.delete(kid);
    this.#flush();
    return this.getGrant(kid)?.iss ?? undefined;
  }

  /** Uses counted and not yet written, by grant: written once per turn of the event loop, in one transaction. */
  readonly #uses = new Map<string, { n: number; at: number }>();
  #writing = false;

  recordUse(kid: string, at: number): void {
    const pending = this.#uses.get(kid);
    if (pending === undefined) this.#uses.set(kid, { n: 1, at });
    else {
      pending.n++;
      pending.at = at;
    }
    if (!this.#writing) {
      this.#writing = true;
      setImmediate(() => this.#writeUses());
    }
    const cached = this.#cache.get(kid);
    if (cached !== undefined) {
      cached.uses++;
      cached.lastUsedAt = at;
    }
  }

  remember(id: string, expiresAtS: number): boolean {
    return this.#replay.remember(id, expiresAtS);
  }

  prune(nowS: number): void {
    this.#replay.prune(nowS);
  }

  settle(id: string, outcome: RequestOutcome): void {
    this.#replay.settle(id, outcome);
  }

  outcome(id: string): RequestOutcome | null | undefined {
    return this.#replay.outcome(id);
  }

  #writeUses(): void {
    this.#writing = false;
    if (this.#uses.size === 0 || !this.#db.open) return;
    const uses = [...this.#uses];
    this.#uses.clear();
    const write = (): void => {
      for (const [kid, { n, at }] of uses) this.#statements.recordUse.run(n, at, kid);
    };
    if (uses.length === 1) write();
    else this.#db.transaction(write)();
  }

  close(): void {
    this.#writeUses();
    this.#db.close();
  }
}
