import type { JWK } from 'jose';
import type { ReplayLog } from './replay-window.js';

/**
 * How often a grant may be used: `count` calls per `intervalMs`, with bursts up to `burst`.
 *
 * @example
 * ```ts
 * await alice.grant({ missions: ['greetings'], rate: { count: 10, intervalMs: 1000, burst: 20 }, to: bobKey });
 * ```
 */
export interface RateLimit {
  count: number;
  intervalMs: number;
  burst: number;
}

/**
 * A grant as stored: a grantee key bound to missions, a rate and an optional expiry.
 *
 * @example
 * ```ts
 * for (const g of alice.grants()) console.log(g.label, g.missions, g.uses, g.revokedAt === null);
 * ```
 */
export interface GrantRecord {
  /** The grantee key's thumbprint: the `kid` its requests carry. */
  kid: string;
  label: string;
  missions: string[];
  publicJwk: JWK;
  rate: RateLimit;
  /** Epoch ms after which the grant is void, or null. */
  expiresAt: number | null;
  createdAt: number;
  /** Epoch ms when revoked, or null. */
  revokedAt: number | null;
  uses: number;
  lastUsedAt: number | null;
  /**
   * The node id the grantee calls from: the `iss` every request under this
   * grant must carry. Set when the grant is made to a node's key; for an
   * issued key, fixed by its first accepted request.
   */
  iss: string | null;
  /** Pid messages' own rate, or null when they spend {@link rate} with calls and casts. */
  messageRate: RateLimit | null;
}

/**
 * Where a node keeps what must survive a restart: its own key, its grants
 * and revocations, and the ids of messages it has accepted (the replay
 * window). {@link SqliteGrantStore} is the default; any other
 * implementation of this interface can be plugged in.
 *
 * @example
 * ```ts
 * class MyStore implements GrantStore {
 *   // keep keys, grants, revocations and replay ids where you like
 * }
 * const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', store: new MyStore() });
 * ```
 */
export interface GrantStore extends ReplayLog {
  /** The node's own private key, or undefined before first start. */
  getNodeKey(): JWK | undefined;
  setNodeKey(jwk: JWK): void;
  addGrant(grant: GrantRecord): void;
  getGrant(kid: string): GrantRecord | undefined;
  listGrants(): GrantRecord[];
  /** Marks a grant revoked; returns false if there is no such grant. */
  revoke(kid: string, at: number): boolean;
  /**
   * Fixes grant `kid`'s issuer to `iss` if it has none yet; returns the
   * issuer it has now (the first one written wins).
   */
  bindIssuer(kid: string, iss: string): string | undefined;
  /** Counts one use. */
  recordUse(kid: string, at: number): void;
  close(): void;
}
