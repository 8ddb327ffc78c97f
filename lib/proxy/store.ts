import type Database from 'better-sqlite3';
import type { JWK } from 'jose';
import { WtdError } from '../errors.js';
import { SqliteReplayLog, type ReplayLog } from '../security/replay-window.js';
import { flush, openDatabase } from '../security/sqlite.js';
import { migrate, ROW_BYTES } from './store-schema.js';

export { ROW_BYTES } from './store-schema.js';

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
  address: string | null;
  lastSeen: number;
  /** The network it registered from (an IPv4 address, or an IPv6 /64), counted against the per-source bound. */
  source: string;
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
  source: string;
}

/** A message to queue, with what the relay's bounds count of it. */
export interface Enqueued {
  to: string;
  id: string;
  body: string;
  expiresAt: number;
  /** The registered node that sent it; null for the proxy's own answers. */
  from: string | null;
  /** The key id it is signed under (requests), or null (responses). */
  kid: string | null;
  kind: 'request' | 'response';
  /** What it costs while waiting ({@link ROW_BYTES} more than its JSON). */
  bytes: number;
  /** Handed over as it is queued (to a node's stream): it can no longer be taken back. */
  taken?: boolean;
}

/** A row a poll or stream takes. */
type TakenRow = { id: string; body: string; bytes: number };

/**
 * The oldest waiting messages for a node, `also` narrowing them. Fair
 * between senders: one message of each key id in turn, each key's in the
 * order sent, so what one key floods the queue with does not delay another's.
 */
function takeSql(also: string): string {
  return `SELECT id, body, bytes FROM (
     SELECT id, body, bytes, seq, row_number() OVER (PARTITION BY kid ORDER BY seq) AS turn FROM messages
     WHERE to_node = ? AND acked = 0 ${also} AND expires_at > ?)
   ORDER BY turn, seq LIMIT ?`;
}

/** Most nodes whose accepted key ids are kept in memory, and most open requests. */
const CACHED_NODES = 4096;
const CACHED_REQUESTS = 100_000;

/** A message the sweep dropped, without its body. */
export interface Dropped {
  to: string;
  from: string | null;
  kid: string | null;
  kind: string | null;
  id: string;
  bytes: number;
  acked: boolean;
  /** Handed to its receiver in a poll's answer: it may have run there. */
  taken: boolean;
}

/** What a message acknowledged by its receiver cost while it waited. */
export interface Acked {
  from: string | null;
  kid: string | null;
  bytes: number;
}

/** The key an e-mail is unique by: one key per e-mail, whatever its letters' case. */
export function emailKey(email: string): string {
  return email.toLowerCase();
}

/**
 * What a proxy keeps across restarts, in `proxy.db` (SQLite): its own key,
 * the registered nodes and the key ids each accepts, the undelivered
 * messages of every queue and the replay window of the requests it
 * accepted. A message is written before the proxy acknowledges it, and
 * stays until its receiver acknowledges it. Acknowledged messages keep
 * their id until they expire, so a repeat of one is recognised and dropped.
 *
 * The file vacuums incrementally: pages freed by expired messages go back
 * to the file system a few thousand at a time ({@link vacuum}), so the file
 * shrinks once a flood has expired. Another program (`wtd proxy remove`)
 * may open it while the proxy runs: WAL mode and SQLite's busy timeout let
 * both write.
 */
export class ProxyStore {
  readonly #db: Database.Database;
  readonly #q;
  /** The replay window's ids of the requests it accepted. */
  readonly replay: ReplayLog;

  /** Key ids each node accepts, read from the table once (at most {@link CACHED_NODES} nodes), dropped when it changes. */
  readonly #accepted = new Map<string, Set<string>>();
  /**
   * The requests stored while this proxy runs and not answered, taken back
   * or expired: per responder, request id to the requester (at most
   * {@link CACHED_REQUESTS}; the table answers for the rest).
   */
  readonly #open = new Map<string, Map<string, string>>();
  #openCount = 0;

  #unopen(responder: string, id: string): void {
    const ids = this.#open.get(responder);
    if (ids === undefined || !ids.delete(id)) return;
    this.#openCount--;
    if (ids.size === 0) this.#open.delete(responder);
  }

  constructor(dataDir: string) {
    const db = openDatabase(dataDir, 'proxy.db', '', 'proxy store');
    this.#db = db;
    try {
      migrate(db);
    } catch (err) {
      db.close();
      throw new WtdError('ERR_STORE', `could not open the proxy store in ${dataDir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.replay = new SqliteReplayLog(db);
    this.#q = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      upsertNode: db.prepare(
        `INSERT INTO nodes (id, kid, email, email_key, name, public_jwk, registered_at, offers, last_seen, source)
         VALUES (@id, @kid, @email, @email_key, @name, @public_jwk, @registered_at, @offers, @last_seen, @source)
         ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_key = excluded.email_key, name = excluded.name`,
      ),
      nodes: db.prepare<[], NodeRow>('SELECT * FROM nodes ORDER BY registered_at'),
      node: db.prepare<[string, string], NodeRow>('SELECT * FROM nodes WHERE id = ? OR email_key = ?'),
      saveOffers: db.prepare('UPDATE nodes SET offers = ?, last_seen = ? WHERE id = ?'),
      saveSeen: db.prepare('UPDATE nodes SET last_seen = ? WHERE id = ?'),
      dropNode: db.prepare('DELETE FROM nodes WHERE id = ?'),
      dropAccepts: db.prepare('DELETE FROM accepts WHERE node = ?'),
      dropQueue: db.prepare('DELETE FROM messages WHERE to_node = ?'),
      addAccept: db.prepare('INSERT OR IGNORE INTO accepts (node, kid) VALUES (?, ?)'),
      acceptsOf: db.prepare<[string], { kid: string }>('SELECT kid FROM accepts WHERE node = ?'),
      acceptCounts: db.prepare<[], { node: string; n: number }>(
        'SELECT node, count(*) AS n FROM accepts GROUP BY node',
      ),
      markRemoved: db.prepare('INSERT OR IGNORE INTO removed (id) VALUES (?)'),
      removed: db.prepare<[], { id: string }>('SELECT id FROM removed'),
      unmarkRemoved: db.prepare('DELETE FROM removed WHERE id = ?'),
      enqueue: db.prepare(
        `INSERT OR IGNORE INTO messages (to_node, id, body, expires_at, from_node, kid, kind, bytes, taken)
         VALUES (@to, @id, @body, @expiresAt, @from, @kid, @kind, @bytes, @taken)`,
      ),
      queued: db.prepare<[string, string], { n: number }>('SELECT 1 AS n FROM messages WHERE to_node = ? AND id = ?'),
      request: db.prepare<[string, string, string], { answered: number }>(
        "SELECT answered FROM messages WHERE to_node = ? AND id = ? AND from_node = ? AND kind = 'request'",
      ),
      answered: db.prepare('UPDATE messages SET answered = 1 WHERE to_node = ? AND id = ?'),
      markTaken: db.prepare('UPDATE messages SET taken = 1 WHERE to_node = ? AND id = ?'),
      cancellable: db.prepare<[string, string, string], { kid: string | null; bytes: number }>(
        `SELECT kid, bytes FROM messages
         WHERE to_node = ? AND id = ? AND from_node = ? AND kind = 'request' AND taken = 0 AND acked = 0`,
      ),
      cancel: db.prepare(
        `UPDATE messages SET acked = 1, answered = 1, body = NULL, bytes = ${ROW_BYTES} WHERE to_node = ? AND id = ?`,
      ),
      take: db.prepare<[string, number, number], TakenRow>(takeSql('')),
      takeFresh: db.prepare<[string, number, number], TakenRow>(takeSql('AND taken = 0')),
      acked: db.prepare<[string, string], { from_node: string | null; kid: string | null; bytes: number }>(
        'SELECT from_node, kid, bytes FROM messages WHERE to_node = ? AND id = ? AND acked = 0',
      ),
      ack: db.prepare(
        `UPDATE messages SET acked = 1, body = NULL, bytes = ${ROW_BYTES}, expires_at = max(expires_at, ?)
         WHERE to_node = ? AND id = ? AND acked = 0`,
      ),
      expire: db.prepare<
        [number, number],
        {
          to_node: string;
          from_node: string | null;
          kid: string | null;
          kind: string | null;
          id: string;
          bytes: number;
          acked: number;
          taken: number;
        }
      >(
        `DELETE FROM messages WHERE seq IN
           (SELECT seq FROM messages WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)
         RETURNING to_node, from_node, kid, kind, id, bytes, acked, taken`,
      ),
      waiting: db.prepare<[], { to_node: string; kid: string | null; n: number; bytes: number }>(
        'SELECT to_node, kid, count(*) AS n, total(bytes) AS bytes FROM messages WHERE acked = 0 GROUP BY to_node, kid',
      ),
      held: db.prepare<[], { from_node: string | null; charged: number; bytes: number }>(
        // What each node's messages hold; `charged` for its requests (answers, kid NULL, are not charged to it).
        'SELECT from_node, kid IS NOT NULL AS charged, total(bytes) AS bytes FROM messages GROUP BY from_node, charged',
      ),
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
      email_key: emailKey(node.email),
      name: node.name,
      public_jwk: JSON.stringify(node.publicJwk),
      registered_at: node.registeredAt,
      offers: offersOf(node),
      last_seen: node.lastSeen,
      source: node.source,
    });
  }

  /** Every registered node. */
  nodes(): NodeRecord[] {
    return this.#q.nodes.all().map(recordOf);
  }

  /** The node with this id or e-mail, if one is registered. */
  find(idOrEmail: string): NodeRecord | undefined {
    const row = this.#q.node.get(idOrEmail, emailKey(idOrEmail));
    return row === undefined ? undefined : recordOf(row);
  }

  saveOffers(node: NodeRecord): void {
    this.#q.saveOffers.run(offersOf(node), node.lastSeen, node.id);
  }

  /** Records when a node was last seen (not at every ping: often enough to forget the right ones). */
  saveSeen(id: string, lastSeen: number): void {
    this.#q.saveSeen.run(lastSeen, id);
  }

  /** The key ids `node` accepts messages under become `kids`. */
  setAccepts(node: string, kids: readonly string[]): void {
    this.batch(() => {
      this.#q.dropAccepts.run(node);
      for (const kid of kids) this.#q.addAccept.run(node, kid);
    });
    this.#accepted.delete(node);
  }

  /** Whether `node`'s last ping named `kid` among the keys it accepts (read from memory, once read from the table). */
  accepts(node: string, kid: string): boolean {
    let kids = this.#accepted.get(node);
    if (kids === undefined) {
      if (this.#accepted.size >= CACHED_NODES) this.#accepted.clear();
      kids = new Set(this.#q.acceptsOf.all(node).map((r) => r.kid));
      this.#accepted.set(node, kids);
    }
    return kids.has(kid);
  }

  /** How many key ids each node accepts. */
  acceptCounts(): Map<string, number> {
    return new Map(this.#q.acceptCounts.all().map((r) => [r.node, r.n]));
  }

  /** Drops a node, what it accepts and its queue. */
  remove(id: string): void {
    this.batch(() => {
      this.#q.dropNode.run(id);
      this.#q.dropAccepts.run(id);
      this.#q.dropQueue.run(id);
    });
    this.#forget(id);
  }

  /** Forgets what memory holds of node `id`: its accepted keys, the requests to it. */
  #forget(id: string): void {
    this.#accepted.delete(id);
    // Those it sent stay until answered or expired (as their rows do): an answer to a node gone is refused.
    this.#openCount -= this.#open.get(id)?.size ?? 0;
    this.#open.delete(id);
  }

  /**
   * {@link remove}, by another program than the running proxy (`wtd proxy
   * remove`): the node is also marked, so a running proxy drops it too at
   * its next sweep.
   */
  removeMarked(id: string): void {
    this.batch(() => {
      this.remove(id);
      this.#q.markRemoved.run(id);
    });
  }

  /** The nodes another program removed since the last call; their marks are cleared. */
  takeRemoved(): string[] {
    const ids = this.#q.removed.all().map((r) => r.id);
    if (ids.length > 0) this.batch(() => ids.forEach((id) => this.#q.unmarkRemoved.run(id)));
    for (const id of ids) this.#forget(id);
    return ids;
  }

  /** Queues a message; false if one with this id was already queued for `to` (it is dropped). */
  enqueue(m: Enqueued): boolean {
    if (this.#q.enqueue.run({ ...m, taken: m.taken === true ? 1 : 0 }).changes !== 1) return false;
    if (m.kind === 'request' && m.from !== null && this.#openCount < CACHED_REQUESTS) {
      let ids = this.#open.get(m.to);
      if (ids === undefined) this.#open.set(m.to, (ids = new Map()));
      if (!ids.has(m.id)) this.#openCount++;
      ids.set(m.id, m.from);
    }
    return true;
  }

  /** Whether a message with this id was queued for `to` (and not yet expired). */
  isQueued(to: string, id: string): boolean {
    return this.#q.queued.get(to, id) !== undefined;
  }

  /**
   * Whether `requester` sent `responder` the request `re` and it is still
   * kept: 'open' until one answer to it was taken, then 'answered'.
   */
  request(responder: string, re: string, requester: string): 'open' | 'answered' | undefined {
    if (this.#open.get(responder)?.get(re) === requester) return 'open';
    const row = this.#q.request.get(responder, re, requester);
    return row === undefined ? undefined : row.answered === 0 ? 'open' : 'answered';
  }

  markAnswered(responder: string, re: string): void {
    this.#unopen(responder, re);
    this.#q.answered.run(responder, re);
  }

  /** The oldest unacknowledged, unexpired messages for `to` (id and JSON), but those in `skip`: at most `limit`, and `maxBytes` after the first. */
  take(
    to: string,
    now: number,
    limit: number,
    maxBytes: number,
    skip?: ReadonlySet<string>,
  ): { id: string; text: string }[] {
    return this.#taken(this.#q.take, to, now, limit, maxBytes, skip);
  }

  /** As {@link take}, but only what was not handed over yet (what a stream has not sent). */
  takeFresh(to: string, now: number, limit: number, maxBytes: number): { id: string; text: string }[] {
    return this.#taken(this.#q.takeFresh, to, now, limit, maxBytes);
  }

  #taken(
    query: Database.Statement<[string, number, number], TakenRow>,
    to: string,
    now: number,
    limit: number,
    maxBytes: number,
    skip?: ReadonlySet<string>,
  ): { id: string; text: string }[] {
    const out: { id: string; text: string }[] = [];
    let bytes = 0;
    for (const row of query.iterate(to, now, limit + (skip?.size ?? 0))) {
      if (skip?.has(row.id) === true) continue;
      if (out.length === limit) break;
      if (out.length > 0 && bytes + row.bytes > maxBytes) break;
      out.push({ id: row.id, text: row.body });
      bytes += row.bytes;
    }
    return out;
  }

  /** Marks messages as handed to `to` in a poll's answer: a request among them can no longer be taken back. */
  markTaken(to: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.batch(() => {
      for (const id of ids) this.#q.markTaken.run(to, id);
    });
  }

  /**
   * Takes back request `id` that `from` sent `to`, if it was not handed
   * over yet: its body goes and its id stays (a repeat of it is dropped,
   * an answer to it refused) until it expires. Returns what it cost while
   * it waited, or undefined if it could not be taken back.
   */
  cancel(to: string, id: string, from: string): { kid: string | null; bytes: number } | undefined {
    return this.batch(() => {
      const row = this.#q.cancellable.get(to, id, from);
      if (row !== undefined) {
        this.#q.cancel.run(to, id);
        this.#unopen(to, id);
      }
      return row;
    });
  }

  /**
   * Marks messages received by `to` (their bodies go; their ids stay until
   * `keepUntil` at least, so that a repeat is dropped and an answer to a
   * request is still recognised); returns what each of them cost.
   */
  ack(to: string, ids: readonly string[], keepUntil: number): Acked[] {
    if (ids.length === 0) return [];
    return this.batch(() => {
      const acked: Acked[] = [];
      for (const id of ids) {
        const row = this.#q.acked.get(to, id);
        if (row === undefined) continue;
        this.#q.ack.run(keepUntil, to, id);
        acked.push({ from: row.from_node, kid: row.kid, bytes: row.bytes });
      }
      return acked;
    });
  }

  /** Drops at most `limit` messages past their time, oldest first, in one commit; returns them without their bodies. */
  expire(now: number, limit: number): Dropped[] {
    return this.batch(() =>
      this.#q.expire.all(now, limit).map((r) => {
        if (r.kind === 'request') this.#unopen(r.to_node, r.id);
        return {
          to: r.to_node,
          from: r.from_node,
          kid: r.kid,
          kind: r.kind,
          id: r.id,
          bytes: r.bytes,
          acked: r.acked === 1,
          taken: r.taken === 1,
        };
      }),
    );
  }

  /** What waits for each node, per key id it was signed under; and what each sender's messages cost. */
  counts(): {
    waiting: { to: string; kid: string | null; n: number; bytes: number }[];
    held: { from: string | null; charged: boolean; bytes: number }[];
  } {
    return {
      waiting: this.#q.waiting.all().map((r) => ({ to: r.to_node, kid: r.kid, n: r.n, bytes: r.bytes })),
      held: this.#q.held.all().map((r) => ({ from: r.from_node, charged: r.charged === 1, bytes: r.bytes })),
    };
  }

  /**
   * Returns up to `pages` free pages to the file system, and checkpoints
   * and truncates the write-ahead log, so the files shrink now (at most one
   * checkpoint a sweep, and only when pages were free). Returns how many
   * were free.
   */
  vacuum(pages: number): number {
    if (this.#db.memory) return 0;
    const free = this.#db.pragma('freelist_count', { simple: true }) as number;
    if (free === 0) return 0;
    this.#db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(pages))})`);
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    return free;
  }

  /** Runs `fn` in one transaction (one commit for a batch of messages). */
  batch<T>(fn: () => T): T {
    return this.#db.inTransaction ? fn() : this.#db.transaction(fn)();
  }

  close(): void {
    this.#db.close();
  }
}

function offersOf(node: NodeRecord): string {
  return JSON.stringify({ missions: node.missions, address: node.address });
}

function recordOf(row: NodeRow): NodeRecord {
  const offers = JSON.parse(row.offers) as { missions?: string[]; address?: string | null };
  return {
    id: row.id,
    kid: row.kid,
    email: row.email,
    name: row.name,
    publicJwk: JSON.parse(row.public_jwk) as JWK,
    registeredAt: row.registered_at,
    missions: offers.missions ?? [],
    address: offers.address ?? null,
    lastSeen: row.last_seen,
    source: row.source,
  };
}
