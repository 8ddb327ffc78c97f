import type { KeyObject } from 'node:crypto';
import { WireError } from '../errors.js';
import type { WallClock } from '../runtime/clock.js';
import { checkTime } from '../security/authenticate.js';
import type { ReplyClaims } from '../wire/claims.js';
import { readKid, verify } from '../wire/envelope.js';

/**
 * Reads a reply signed by the node a request went to: signed by its key
 * (`from.kid`), from its node id, for `to.aud`, answering request `to.id`
 * (when given), in its time window. `ERR_BAD_REPLY` (502) for anything else.
 */
export async function signedReply(
  jws: string,
  from: { kid: string; key: KeyObject; id: string },
  to: { aud: string; id?: string },
  clock: WallClock,
): Promise<ReplyClaims> {
  if (readKid(jws, 'reply') !== from.kid) {
    throw new WireError('ERR_BAD_REPLY', 502, 'the answer was not signed by the node we called');
  }
  const claims = (await verify(jws, from.key)) as unknown as ReplyClaims;
  if ((to.id !== undefined && claims.id !== to.id) || claims.aud !== to.aud || claims.iss !== from.id) {
    throw new WireError('ERR_BAD_REPLY', 502, 'the answer does not answer this request');
  }
  checkTime(claims, clock);
  return claims;
}
