import type { JWK } from 'jose';
import { WtdError, describeValue } from '../errors.js';

/**
 * What a node tells another so that it can be granted missions and called:
 * its name, id and public key, and where it can be reached. It holds no
 * secret: send it any way you like. `wtd whoami --out alice.card` writes
 * one, as does {@link WtdNode.card}; `grant({ to })` and `connect()` take it.
 *
 * @example
 * ```ts
 * const card: ContactCard = alice.card();
 * // Bob sends Alice his card; she grants to it, and sends hers back:
 * await alice.grant({ missions: ['greetings'], rate: '10/s', to: bobCard });
 * const remote = await bob.connect(aliceCard); // signed with Bob's own key
 * ```
 */
export interface ContactCard {
  wtd: 'card';
  version: 1;
  name: string;
  /** The node's id, derived from its key (checked against it when the card is read). */
  id: string;
  publicJwk: JWK;
  /** Where the node listens, or null. */
  address: string | null;
  /** The proxy the node joined, or null. */
  proxy: string | null;
}

/** True when `value` has the shape of a {@link ContactCard} (its key is checked when it is used). */
export function isContactCard(value: unknown): value is ContactCard {
  const v = value as Partial<ContactCard> | null;
  return v !== null && typeof v === 'object' && v.wtd === 'card' && typeof v.publicJwk === 'object';
}

/**
 * The public key in what a grantee gave: a JWK, a {@link ContactCard}, or
 * the key file older versions of `wtd whoami --out` wrote (`{ wtd: 'key', publicJwk }`).
 */
export function publicKeyOf(given: unknown): JWK {
  const v = given as { wtd?: unknown; publicJwk?: unknown } | null;
  if (v !== null && typeof v === 'object' && (v.wtd === 'card' || v.wtd === 'key')) {
    if (v.publicJwk === null || typeof v.publicJwk !== 'object') {
      throw new WtdError('ERR_BAD_KEY', 'this contact card holds no public key');
    }
    return v.publicJwk as JWK;
  }
  if (v === null || typeof v !== 'object') {
    throw new WtdError('ERR_BAD_KEY', `a public key is a JWK or a contact card, got ${describeValue(given)}`);
  }
  return v as JWK;
}
