import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WtdError } from '../errors.js';

/**
 * Opens (or creates) `fileName` in `dataDir`, readable by its owner only,
 * in WAL mode with `synchronous = NORMAL`, and runs `schema`. `':memory:'`
 * opens a database that lives only as long as the process. With NORMAL a
 * commit is not flushed to disk one by one (on an SD card that is
 * milliseconds a write): a crash of the program loses nothing committed, a
 * power cut may lose the last moment's writes; {@link flush} makes what was
 * just written survive that too. Fails with `ERR_STORE`.
 */
export function openDatabase(dataDir: string, fileName: string, schema: string, what: string): Database.Database {
  let file = ':memory:';
  if (dataDir !== ':memory:') {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    file = join(dataDir, fileName);
  }
  try {
    const db = new Database(file);
    if (file !== ':memory:') chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(schema);
    return db;
  } catch (err) {
    throw new WtdError('ERR_STORE', `could not open the ${what} at ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Flushes the write-ahead log to the database file and the disk. */
export function flush(db: Database.Database): void {
  if (!db.memory) db.pragma('wal_checkpoint(FULL)');
}
