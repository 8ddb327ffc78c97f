import { WireError } from '../errors.js';
import type { GrantRecord } from './grant-store.js';

/**
 * Throws the refusal for a grant that cannot be used at `nowMs`:
 * `ERR_UNKNOWN_KEY` (401) if there is none, `ERR_GRANT_REVOKED` or
 * `ERR_GRANT_EXPIRED` (403). Returns the grant otherwise.
 */
export function usableGrant(grant: GrantRecord | undefined, nowMs: number): GrantRecord {
  if (grant === undefined) throw new WireError('ERR_UNKNOWN_KEY', 401, 'no grant is known for this key');
  if (grant.revokedAt !== null) {
    throw new WireError('ERR_GRANT_REVOKED', 403, 'this grant was revoked by the node owner; ask them for a new grant');
  }
  if (grant.expiresAt !== null && grant.expiresAt <= nowMs) {
    throw new WireError('ERR_GRANT_EXPIRED', 403, 'this grant has expired; ask the node owner for a new one');
  }
  return grant;
}

/** True while `grant` exists, is not revoked and has not expired. */
export function isUsable(grant: GrantRecord | undefined, nowMs: number): boolean {
  return grant !== undefined && grant.revokedAt === null && (grant.expiresAt === null || grant.expiresAt > nowMs);
}
