import { randomBytes } from 'node:crypto';
import type { DirectoryEntry, PingAnswer } from '../wire/relay.js';

/** Ids of removed nodes the log remembers (so readers hear they went) before it starts afresh. */
const MAX_GONE = 1024;

/**
 * The proxy's directory as a log of changes, so that a ping brings what
 * changed since the node's last one rather than the whole list: what a
 * crowd of silent strangers costs a node is one entry each, once.
 *
 * Every change of a node seen in the directory (online, offline, its name,
 * missions or address, its removal) is a new version; a reader's cursor is
 * the version it has read up to, prefixed by this log's epoch (a new proxy
 * or a restart starts a new one). A cursor from another epoch, or from
 * before the log last started afresh, gets the whole directory again
 * (`reset`). Answers are pages of at most `page` entries.
 */
export class DirectoryLog {
  readonly #epoch = randomBytes(6).toString('base64url');
  #version = 0;
  /** Cursors below this are too old: what changed after them is no longer all in the log. */
  #floor = 0;
  /** Changes in version order; an entry superseded by a later one of its id is skipped, and dropped in time. */
  #log: { v: number; id: string }[] = [];
  /** The version of each id's latest entry. */
  readonly #latest = new Map<string, number>();
  /** Ids whose latest entry says they were removed. */
  readonly #gone = new Set<string>();

  /** Records that what the directory shows of `id` changed. */
  touch(id: string): void {
    this.#gone.delete(id);
    this.#append(id);
    if (this.#log.length > 2 * this.#latest.size + 1024) this.#log = this.#log.filter((e) => this.#current(e));
  }

  /** Records that `id` was removed: readers hear it is gone. */
  remove(id: string): void {
    this.#gone.add(id);
    this.#append(id);
    if (this.#gone.size > MAX_GONE) this.#restart();
  }

  /**
   * The changes after `cursor`, one page of them; `entry` gives what the
   * directory shows of an id now (undefined once removed). A reset lists
   * only the nodes online.
   */
  since(cursor: string | undefined, page: number, entry: (id: string) => DirectoryEntry | undefined): PingAnswer {
    let from = this.#parse(cursor);
    const reset = from === undefined;
    from ??= this.#floor;
    let i = firstAfter(this.#log, from);
    const changes: DirectoryEntry[] = [];
    let last = from;
    for (; i < this.#log.length && changes.length < page; i++) {
      const e = this.#log[i]!;
      last = e.v;
      if (!this.#current(e)) continue;
      const shown = entry(e.id);
      if (reset && (shown === undefined || !shown.online)) continue;
      changes.push(shown ?? { id: e.id, name: '', missions: [], address: null, online: false, lastSeen: 0 });
    }
    const more = i < this.#log.length;
    return { cursor: `${this.#epoch}.${more ? last : this.#version}`, reset, changes, more };
  }

  #append(id: string): void {
    const v = ++this.#version;
    this.#log.push({ v, id });
    this.#latest.set(id, v);
  }

  #current(e: { v: number; id: string }): boolean {
    return this.#latest.get(e.id) === e.v;
  }

  /** Forgets the removed ids and numbers the rest again: readers behind now read the whole directory. */
  #restart(): void {
    const kept = this.#log.filter((e) => this.#current(e) && !this.#gone.has(e.id));
    for (const id of this.#gone) this.#latest.delete(id);
    this.#gone.clear();
    this.#floor = this.#version;
    this.#log = [];
    for (const e of kept) this.#append(e.id);
  }

  /** The version a cursor stands for, if it is one of this log's and not too old. */
  #parse(cursor: string | undefined): number | undefined {
    if (cursor === undefined) return undefined;
    const dot = cursor.lastIndexOf('.');
    if (cursor.slice(0, dot) !== this.#epoch) return undefined;
    const v = Number(cursor.slice(dot + 1));
    return Number.isSafeInteger(v) && v >= this.#floor && v <= this.#version ? v : undefined;
  }
}

/** The index of the first entry with a version above `v`. */
function firstAfter(log: readonly { v: number }[], v: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (log[mid]!.v <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
