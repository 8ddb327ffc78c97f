import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DataDirLockedError, WtdError } from '../errors.js';

/**
 * An exclusive hold on a node's data directory, so that two programs never
 * run one node at once (each would answer as it, and rewrite where it can
 * be reached). The hold is an SQLite exclusive lock on `node.lock`: the
 * operating system drops it when the holder exits, however it exits, so a
 * crash never leaves the directory locked. `node.pid` beside it says which
 * process holds it, for the error a second one gets. Tools that only read or
 * write grants do not take it.
 */
export class DataDirLock {
  readonly #db: Database.Database;
  readonly #pidFile: string;
  #released = false;

  private constructor(db: Database.Database, pidFile: string) {
    this.#db = db;
    this.#pidFile = pidFile;
  }

  /** Takes the hold on `dataDir`, or fails at once with {@link DataDirLockedError} (`ERR_DATA_DIR_LOCKED`). */
  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const pidFile = join(dataDir, 'node.pid');
    let db: Database.Database;
    try {
      db = new Database(join(dataDir, 'node.lock'), { timeout: 0 });
    } catch (err) {
      throw new WtdError('ERR_STORE', `could not open the lock of ${dataDir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // The first write takes the exclusive lock; in this mode it is kept until the connection closes.
      db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); COMMIT;');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new DataDirLockedError(dataDir, readPid(pidFile), { cause: err });
      }
      throw new WtdError('ERR_STORE', `could not lock ${dataDir}: ${(err as Error).message}`, { cause: err });
    }
    writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
    return new DataDirLock(db, pidFile);
  }

  /** Gives the directory up (a node does when it closes). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    rmSync(this.#pidFile, { force: true });
    this.#db.close();
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
