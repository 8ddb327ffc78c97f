/**
 * The shape of `proxy.db` and how a file of an earlier version is brought
 * to it; {@link ProxyStore} is the one that reads and writes it.
 * @module
 */
import type Database from 'better-sqlite3';

/**
 * What every stored message costs beyond its JSON, in bytes, also once it
 * was received: its id is kept until it expires so that a repeat is
 * dropped, and that row is charged to its sender.
 */
export const ROW_BYTES = 128;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, kid TEXT NOT NULL UNIQUE, email TEXT NOT NULL, name TEXT NOT NULL,
    public_jwk TEXT NOT NULL, registered_at INTEGER NOT NULL, offers TEXT NOT NULL, last_seen INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, to_node TEXT NOT NULL, id TEXT NOT NULL, body TEXT,
    expires_at INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0, UNIQUE (to_node, id));
  CREATE INDEX IF NOT EXISTS waiting ON messages (to_node, acked, seq);
  CREATE TABLE IF NOT EXISTS accepts (node TEXT NOT NULL, kid TEXT NOT NULL, PRIMARY KEY (node, kid)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS removed (id TEXT PRIMARY KEY);
`;

/** Columns added since the first schema: added to an older proxy.db when it is opened. */
const ADDED = {
  nodes: { source: "TEXT NOT NULL DEFAULT ''", email_key: "TEXT NOT NULL DEFAULT ''" },
  messages: {
    from_node: 'TEXT',
    kid: 'TEXT',
    kind: 'TEXT',
    bytes: 'INTEGER NOT NULL DEFAULT -1',
    answered: 'INTEGER NOT NULL DEFAULT 0',
    // Handed to its receiver in a poll's answer (it may be running there): no longer taken back.
    taken: 'INTEGER NOT NULL DEFAULT 0',
  },
} as const;

const INDEXES = `
  CREATE INDEX IF NOT EXISTS expiry ON messages (expires_at);
  CREATE INDEX IF NOT EXISTS nodes_email ON nodes (email_key);
`;

/**
 * Brings a proxy.db of any earlier version to this one: incremental vacuum
 * (set before the first table, or by one VACUUM of an older file), the
 * columns and indexes added since, the cost of each waiting message, and
 * accepted key ids moved from the offers to their own table.
 */
export function migrate(db: Database.Database): void {
  // Once the file exists (WAL mode has written its header) the mode changes only by a VACUUM, quick while it is small.
  if (!db.memory && (db.pragma('auto_vacuum', { simple: true }) as number) !== 2) {
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
  }
  // A removal from another program waits up to 5 s for the proxy's commit, not fails at once.
  db.pragma('busy_timeout = 5000');
  // The write-ahead log goes back to this size after a checkpoint, whatever a flood made of it.
  db.pragma('journal_size_limit = 4194304');
  db.exec(SCHEMA);
  for (const [table, columns] of Object.entries(ADDED)) {
    const have = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
    for (const [name, type] of Object.entries(columns)) {
      if (!have.has(name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
    }
  }
  db.exec(INDEXES);
  db.transaction(() => {
    db.exec("UPDATE nodes SET email_key = lower(email) WHERE email_key = ''");
    db.exec(
      `UPDATE messages SET
         bytes = CASE WHEN acked = 0 THEN coalesce(length(body), 0) + ${ROW_BYTES} ELSE ${ROW_BYTES} END,
         from_node = CASE WHEN json_valid(body) THEN json_extract(body, '$.from') END,
         kind = CASE WHEN json_valid(body) THEN json_extract(body, '$.kind') END
       WHERE bytes = -1`,
    );
    const old = db
      .prepare<[], { id: string; offers: string }>('SELECT id, offers FROM nodes WHERE offers LIKE \'%"grants"%\'')
      .all();
    const add = db.prepare('INSERT OR IGNORE INTO accepts (node, kid) VALUES (?, ?)');
    const save = db.prepare('UPDATE nodes SET offers = ? WHERE id = ?');
    for (const row of old) {
      const offers = JSON.parse(row.offers) as { missions?: string[]; grants?: string[]; address?: string | null };
      for (const kid of offers.grants ?? []) add.run(row.id, kid);
      save.run(JSON.stringify({ missions: offers.missions ?? [], address: offers.address ?? null }), row.id);
    }
  })();
}
