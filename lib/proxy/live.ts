import type { NodeRecord } from './store.js';

/** A registered node as the proxy holds it in memory. */
export interface Live {
  record: NodeRecord;
  online: boolean;
  /** Online, but silent for longer than `suspectAfterMs`. */
  suspect: boolean;
  /** The incarnation its pings carry (a new one is a restart). */
  incarnation: string | undefined;
  /** Its last ping said it runs with encryption off. */
  plaintext: boolean;
  /** Messages waiting for it, and what they cost: kept in step with the store (so an empty queue costs no query). */
  queued: number;
  queuedBytes: number;
  /** What waits for it per key id the requests were signed under: each sender's share of its queue. */
  shares: Map<string, { n: number; bytes: number }>;
  /** What the messages it sent cost, received or not, until they expire: its bytes in flight. */
  held: number;
  /** How many key ids its last ping said it accepts, and a digest of them (so an unchanged list is not written again). */
  accepts: number;
  acceptsDigest?: string;
  /** When its last-seen time was last written (it is written now and then, not at every ping). */
  savedSeen: number;
  sent: number;
  received: number;
}

/** A node as the relay starts to hold it: nothing waiting, nothing sent. */
export function live(record: NodeRecord, accepts = 0): Live {
  return {
    record,
    online: false,
    suspect: false,
    incarnation: undefined,
    plaintext: false,
    queued: 0,
    queuedBytes: 0,
    shares: new Map(),
    held: 0,
    accepts,
    savedSeen: record.lastSeen,
    sent: 0,
    received: 0,
  };
}

/** Counts off a message under `kid` that left `to`'s queue. */
export function unshare(to: Live, kid: string, bytes: number): void {
  const share = to.shares.get(kid);
  if (share === undefined) return;
  share.n--;
  share.bytes -= bytes;
  if (share.n <= 0) to.shares.delete(kid);
}
