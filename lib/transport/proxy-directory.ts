import type { Logger } from '../runtime/node.js';
import type { DirectoryEntry, PingAnswer, PingBody, PingLimits } from '../wire/relay.js';

/** Called with a node that came online (`nodeup`) or went offline (`nodedown`). */
export type DirectoryListener = (entry: DirectoryEntry) => void;

/**
 * A node's view of its proxy's directory, kept up to date from the changes
 * each ping brings (a page at a time), with `nodeup` and `nodedown` as
 * nodes come and go. A node the proxy calls suspect stays listed (no
 * `nodedown`); one listed with another incarnation restarted: `nodedown`
 * then `nodeup`. A reset (the proxy did not know the cursor) is read
 * whole before it replaces the view, so that only real changes are told.
 */
export class DirectoryView {
  readonly #entries = new Map<string, DirectoryEntry>();
  readonly #listeners = { nodeup: new Set<DirectoryListener>(), nodedown: new Set<DirectoryListener>() };
  readonly #logger: Logger;
  /** Where the last answer left off: the next ping's `since`. */
  cursor: string | undefined;
  // The directory being read afresh, until the last page of a reset.
  #fresh: Map<string, DirectoryEntry> | undefined;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** The nodes online, this one included. */
  entries(): DirectoryEntry[] {
    return [...this.#entries.values()];
  }

  on(event: 'nodeup' | 'nodedown', listener: DirectoryListener): void {
    this.#listeners[event].add(listener);
  }

  off(event: 'nodeup' | 'nodedown', listener: DirectoryListener): void {
    this.#listeners[event].delete(listener);
  }

  /** Applies one page of changes. */
  apply(answer: PingAnswer): void {
    if (answer.reset) this.#fresh = new Map();
    const fresh = this.#fresh;
    for (const entry of answer.changes) {
      if (fresh === undefined) this.#update(entry);
      else if (entry.online) fresh.set(entry.id, entry);
      else fresh.delete(entry.id);
    }
    this.cursor = answer.cursor;
    if (fresh === undefined || answer.more === true) return;
    this.#fresh = undefined;
    for (const [id, entry] of this.#entries) {
      if (!fresh.has(id)) this.#update({ ...entry, online: false });
    }
    for (const entry of fresh.values()) this.#update(entry);
  }

  /** One node's change: listed, updated or gone. */
  #update(entry: DirectoryEntry): void {
    const known = this.#entries.get(entry.id);
    if (!entry.online) {
      if (known === undefined) return;
      this.#entries.delete(entry.id);
      this.#emit('nodedown', { ...known, online: false });
      return;
    }
    this.#entries.set(entry.id, entry);
    if (known !== undefined && known.incarnation !== undefined && entry.incarnation !== known.incarnation) {
      // It restarted between two pings: what ran there before is gone.
      this.#emit('nodedown', { ...known, online: false });
      this.#emit('nodeup', entry);
    } else if (known === undefined) this.#emit('nodeup', entry);
  }

  #emit(event: 'nodeup' | 'nodedown', entry: DirectoryEntry): void {
    for (const l of this.#listeners[event]) {
      try {
        l(entry);
      } catch (err) {
        this.#logger.error(`a ${event} listener threw: ${(err as Error).message}`, err);
      }
    }
  }
}

/**
 * What a node offers cut to a proxy's bounds of a ping: the first missions
 * and the first accepted key ids (the most wanted come first) that fit.
 */
export function withinLimits(
  offers: Omit<PingBody, 'name' | 'since'>,
  limits: PingLimits,
): Omit<PingBody, 'name' | 'since'> {
  const missions = offers.missions.slice(0, limits.missions);
  const accepts = offers.accepts.slice(0, limits.accepts);
  // Room for the name and the cursor, then the lists.
  let room = limits.bytes - 512 - Buffer.byteLength(JSON.stringify({ missions, address: offers.address }));
  let fit = 0;
  while (fit < accepts.length && (room -= Buffer.byteLength(accepts[fit]!) + 3) >= 0) fit++;
  accepts.length = fit;
  return { missions, accepts, address: offers.address };
}
