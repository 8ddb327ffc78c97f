import type Database from 'better-sqlite3';
import type { JWK } from 'jose';
import { SqliteReplayLog, type ReplayLog } from '../security/replay-window.js';
import { flush, openDatabase } from '../security/sqlite.js';

/** A registered node, as the proxy keeps it. */
export interface NodeRecord {
  /** The node id: the first 16 characters of its key's thumbprint. */
  id: string;
  /** The thumbprint its requests name in `kid`. */
  kid: string;
  email: string;
  name: string;
  publicJwk: JWK;
  registeredAt: number;
  /** What it offered at its last ping. */
  missions: string[];
  grants: string[];
  address: string | null;
  lastSeen: number;
}

interface NodeRow {
  id: string;
  kid: string;
  email: string;
  name: string;
  public_jwk: string;
  registered_at: number;
  offers: string;
  last_seen: number;
}

/** A relayed message waiting in a queue: its JSON and when it may be dropped. */
export interface QueuedMessage {
  id: string;
  body: string;
  expiresAt: number;
}

/**
 * What a proxy keeps across restarts, in `proxy.db` (SQLite): its own key,
 * the registered nodes, the undelivered messages of every queue and the
 * replay window of the requests it accepted. A message is written before
 * the proxy acknowledges it, and stays until its receiver acknowledges it.
 * Acknowledged messages keep their id until they expire, so a repeat of one
 * is recognised and dropped.
 */
export class ProxyStore {
  readonly #db: Database.Database;
  readonly #q;
  /** The replay window's ids of the requests it accepted. */
  readonly replay: ReplayLog;

  constructor(dataDir: string) {
    this.#db = openDatabase(
      dataDir,
      'proxy.db',
      `
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS nodes (
          id TEXT PRIMARY KEY, kid TEXT NOT NULL UNIQUE, email TEXT NOT NULL, name TEXT NOT NULL,
          public_jwk TEXT NOT NULL, registered_at INTEGER NOT NULL, offers TEXT NOT NULL, last_seen INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS messages (
          seq INTEGER PRIMARY KEY AUTOINCREMENT, to_node TEXT NOT NULL, id TEXT NOT NULL, body TEXT,
          expires_at INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0, UNIQUE (to_node, id));
        CREATE INDEX IF NOT EXISTS waiting ON messages (to_node, acked, seq);
      `,
      'proxy store',
    );
    const db = this.#db;
    this.replay = new SqliteReplayLog(db);
    this.#q = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      upsertNode: db.prepare(
        `INSERT INTO nodes (id, kid, email, name, public_jwk, registered_at, offers, last_seen)
         VALUES (@id, @kid, @email, @name, @public_jwk, @registered_at, @offers, @last_seen)
         ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name`,
      ),
      nodes: db.prepare<[], NodeRow>('SELECT * FROM nodes ORDER BY registered_at'),
      saveOffers: db.prepare('UPDATE nodes SET offers = ?, last_seen = ? WHERE id = ?'),
      enqueue: db.prepare('INSERT OR IGNORE INTO messages (to_node, id, body, expires_at) VALUES (?, ?, ?, ?)'),
      depth: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM messages WHERE to_node = ? AND acked = 0'),
      take: db.prepare<[string, number, number], QueuedMessage>(
        `SELECT id, body, expires_at AS expiresAt FROM messages
         WHERE to_node = ? AND acked = 0 AND expires_at > ? ORDER BY seq LIMIT ?`,
      ),
      ack: db.prepare('UPDATE messages SET acked = 1, body = NULL WHERE to_node = ? AND id = ? AND acked = 0'),
      expired: db.prepare<[number], { to_node: string; id: string; body: string }>(
        'SELECT to_node, id, body FROM messages WHERE acked = 0 AND expires_at <= ?',
      ),
      dropExpired: db.prepare('DELETE FROM messages WHERE expires_at <= ?'),
    };
  }

  getMeta(key: string): string | undefined {
    return this.#q.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.#q.setMeta.run(key, value);
    flush(this.#db);
  }

  /** Adds a node, or updates the e-mail and name of one registered with the same key. */
  register(node: NodeRecord): void {
    this.#q.upsertNode.run({
      id: node.id,
      kid: node.kid,
      email: node.email,
      name: node.name,
      public_jwk: JSON.stringify(node.publicJwk),
      registered_at: node.registeredAt,
      offers: JSON.stringify({ missions: node.missions, grants: node.grants, address: node.address }),
      last_seen: node.lastSeen,
    });
  }

  /** Every registered node. */
  nodes(): NodeRecord[] {
    return this.#q.nodes.all().map((row) => {
      const offers = JSON.parse(row.offers) as { missions: string[]; grants: string[]; address: string | null };
      return {
        id: row.id,
        kid: row.kid,
        email: row.email,
        name: row.name,
        publicJwk: JSON.parse(row.public_jwk) as JWK,
        registeredAt: row.registered_at,
        missions: offers.missions,
        grants: offers.grants,
        address: offers.address,
        lastSeen: row.last_seen,
      };
    });
  }

  saveOffers(node: NodeRecord): void {
    this.#q.saveOffers.run(
      JSON.stringify({ missions: node.missions, grants: node.grants, address: node.address }),
      node.lastSeen,
      node.id,
    );
  }

  /** Queues `body` for `to`; false if a message with this id was already queued there (it is dropped). */
  enqueue(to: string, id: string, body: string, expiresAt: number): boolean {
    return this.#q.enqueue.run(to, id, body, expiresAt).changes === 1;
  }

  /** Messages waiting for `to`, not yet acknowledged. */
  depth(to: string): number {
    return this.#q.depth.get(to)!.n;
  }

  /** The oldest unacknowledged, unexpired messages for `to`. */
  take(to: string, now: number, limit: number): QueuedMessage[] {
    return this.#q.take.all(to, now, limit);
  }

  /** Marks messages received by `to`; returns how many were waiting. */
  ack(to: string, ids: readonly string[]): number {
    if (ids.length === 0) return 0;
    return this.batch(() => {
      let n = 0;
      for (const id of ids) n += this.#q.ack.run(to, id).changes;
      return n;
    });
  }

  /** Drops every message past its time; returns those never delivered, to tell their senders. */
  expire(now: number): { to: string; id: string; body: string }[] {
    return this.#db.transaction(() => {
      const lost = this.#q.expired.all(now).map((r) => ({ to: r.to_node, id: r.id, body: r.body }));
      this.#q.dropExpired.run(now);
      return lost;
    })();
  }

  /** Runs `fn` in one transaction (one commit for a batch of messages). */
  batch<T>(fn: () => T): T {
    return this.#db.inTransaction ? fn() : this.#db.transaction(fn)();
  }

  close(): void {
    this.#db.close();
  }
}
