import type { Live } from './live.js';

/** The most nodes one page of `/status.json` lists. */
export const MAX_STATUS_LIMIT = 1000;

/**
 * One node's line of the proxy's status.
 *
 * @example
 * ```ts
 * for (const n of proxy.status().nodes) console.log(n.name, n.online, n.queued);
 * ```
 */
export interface ProxyNodeStatus {
  id: string;
  name: string;
  online: boolean;
  /** Online, but silent for longer than the proxy's `suspectAfterMs`. */
  suspect: boolean;
  /** It runs with encryption off (debugging): what it sends through the proxy is in the clear. */
  plaintext: boolean;
  missions: string[];
  /** How many key ids it accepts messages under (its grants and peers; the ids are not shown). */
  accepts: number;
  address: string | null;
  /** Messages waiting for it, and their bytes. */
  queued: number;
  queuedBytes: number;
  lastSeen: number;
  /** Messages relayed from it and to it since the proxy started. */
  sent: number;
  received: number;
}

/**
 * What `GET /status.json` (and the page at `GET /`) shows: the counts of
 * the whole proxy, and one page of its nodes, online first, then by name.
 *
 * @example
 * ```ts
 * const status: ProxyStatus = proxy.status();
 * console.log(`${status.online} of ${status.total} online, ${status.relayed} relayed`);
 * ```
 */
export interface ProxyStatus {
  id: string;
  startedAt: number;
  now: number;
  relayed: number;
  /** Messages refused since the proxy started. */
  refused: number;
  waitingPolls: number;
  /** Nodes with a stream open to the proxy (each in the place of a held poll). */
  streams: number;
  /** Bytes of messages it holds. */
  queuedBytes: number;
  /** Registered nodes, and how many of them are online. */
  total: number;
  online: number;
  /** This page (from 1), how many nodes a page lists, and how many pages there are. */
  page: number;
  limit: number;
  pages: number;
  nodes: ProxyNodeStatus[];
}

/**
 * Which nodes {@link WtdProxy.status} lists: a page of them, maybe only those online.
 *
 * @example
 * ```ts
 * const second: StatusQuery = { page: 2, limit: 100, online: true };
 * console.log(proxy.status(second).nodes.map((n) => n.name));
 * ```
 */
export interface StatusQuery {
  /** From 1. Default 1. */
  page?: number;
  /** Nodes a page lists. Default: all of them (`GET /status.json`: 100, at most 1000). */
  limit?: number;
  /** Only the nodes online. */
  online?: boolean;
}

/** A positive whole number from a query string, or `fallback`. */
export function count(value: unknown, fallback: number): number {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

/** The nodes in the order the status lists them: online first, then by name, then by id. */
export function ordered(nodes: Iterable<Live>): Live[] {
  return [...nodes].sort(
    (a, b) =>
      Number(b.online) - Number(a.online) ||
      a.record.name.localeCompare(b.record.name) ||
      a.record.id.localeCompare(b.record.id),
  );
}

/** The status of a proxy whose nodes are `nodes` (in {@link ordered} order): its counts, and the page `query` asks for. */
export function statusOf(
  nodes: Live[],
  query: StatusQuery,
  counts: Omit<ProxyStatus, 'total' | 'online' | 'page' | 'limit' | 'pages' | 'nodes'>,
): ProxyStatus {
  const total = nodes.length;
  let online = 0;
  while (online < nodes.length && nodes[online]!.online) online++;
  const listed = query.online === true ? nodes.slice(0, online) : nodes;
  const limit = count(query.limit, Math.max(1, listed.length));
  const pages = Math.max(1, Math.ceil(listed.length / limit));
  const page = Math.min(count(query.page, 1), pages);
  return {
    ...counts,
    total,
    online,
    page,
    limit,
    pages,
    nodes: listed.slice((page - 1) * limit, page * limit).map((n) => ({
      id: n.record.id,
      name: n.record.name,
      online: n.online,
      suspect: n.suspect,
      plaintext: n.plaintext,
      missions: n.record.missions,
      accepts: n.accepts,
      address: n.record.address,
      queued: n.queued,
      queuedBytes: n.queuedBytes,
      lastSeen: n.record.lastSeen,
      sent: n.sent,
      received: n.received,
    })),
  };
}
