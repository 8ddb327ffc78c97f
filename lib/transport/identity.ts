import type { JWK } from 'jose';
import type { ClaimsOf, MessageKind } from '../wire/claims.js';
import type { HttpResponse } from './http-client.js';
import { sign } from '../wire/envelope.js';
import { shortId, type KeyPair } from '../security/keys.js';

/**
 * A node's own key, as the parts that sign with it see it: its id, its
 * public key and a way to sign, never the private key itself.
 */
export class NodeIdentity {
  /** The node id others address it by: a short fingerprint of its key. */
  readonly id: string;
  /** The RFC 7638 thumbprint of its key: the `kid` of what it signs. */
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly #keys: KeyPair;

  constructor(keys: KeyPair) {
    this.#keys = keys;
    this.id = shortId(keys.thumbprint);
    this.kid = keys.thumbprint;
    this.publicJwk = keys.publicJwk;
  }

  /** Signs `claims` of kind `kind` with the node key. */
  sign<K extends MessageKind>(kind: K, claims: ClaimsOf[K]): Promise<string> {
    return sign(kind, claims, this.#keys.privateKey, this.#keys.thumbprint);
  }
}

/**
 * Signs requests of one key: the node's own, or a grant's; or seals them in
 * a session of that key, and then `renew` says, for a request whose answer
 * said its session is gone, whether it may be sealed again in a new session
 * and sent again: only when the node signed that answer for that very
 * request.
 */
export type Signer = (<K extends MessageKind>(kind: K, claims: ClaimsOf[K]) => Promise<string>) & {
  renew?: (claims: object, res: HttpResponse) => Promise<boolean>;
  /** Set when it seals in a session: several pid messages may then travel as one `PUT /batch`. */
  batches?: boolean;
};
