import type { JWK } from 'jose';
import { WtdError } from '../errors.js';
import { importPrivate, importPublic, shortId } from '../security/keys.js';
import { sign } from '../wire/envelope.js';
import { isContactCard, publicKeyOf, type ContactCard } from './contact-card.js';
import type { GrantFile } from './grant-issuer.js';
import type { NodeIdentity, Signer } from './identity.js';
import type { WallClock } from '../runtime/clock.js';
import { sharedStreamLink } from './call-stream.js';
import { directLink, type Link } from './link.js';
import type { ProxyClient } from './proxy-client.js';
import type { Connection } from './remote-node.js';

/**
 * Options for {@link WtdNode.connect}.
 *
 * @example
 * ```ts
 * const remote = await bob.connect(grantFile, { via: 'proxy' }); // even if the file has an address
 * ```
 */
export interface ConnectOptions {
  /**
   * `'direct'` to the node's address, or `'proxy'` through the proxy this
   * node joined. Default: direct when the target has an address, else proxy.
   */
  via?: 'direct' | 'proxy';
  /**
   * Straight to the node's address: whether lone calls travel on a stream
   * (one connection upgraded from HTTP, a line a call each way), which
   * takes about half the time of a request each. Default true; false sends
   * each over HTTP of its own (for a network whose middleboxes drop
   * upgrades, or to compare).
   */
  stream?: boolean;
}

/**
 * Whom to connect to without a grant file: a node that granted missions to this node's own key.
 *
 * @example
 * ```ts
 * // Alice granted missions to Bob's own key; Bob needs only her key and address:
 * const remote = await bob.connect({ nodeKey: alicePublicJwk, address: 'http://192.168.1.20:14153' });
 * ```
 */
export interface ConnectTarget {
  /** The node's public key (its id is derived from it), or its contact card. */
  nodeKey: JWK | ContactCard;
  /** Its address, if it listens; without one the call goes through the proxy. */
  address?: string | null;
}

/**
 * How to reach the node a grant file, a contact card or a target names, and
 * with which key to sign: the grant file's own, or this node's (for a grant
 * made to its key).
 */
export async function connectionTo(
  target: GrantFile | ConnectTarget | ContactCard,
  options: ConnectOptions,
  own: NodeIdentity,
  proxy: ProxyClient | undefined,
  clock: WallClock,
): Promise<Connection> {
  let nodeJwk: JWK;
  let address: string | null;
  let grantKid: string;
  let signer: Signer;
  let reachable = true;
  let missions: string[] | undefined;
  if ('wtd' in target && target.wtd === 'grant') {
    nodeJwk = target.node.publicJwk;
    address = target.node.address;
    reachable = address !== null || (target.node.proxy ?? null) !== null;
    const grantKey = (await importPrivate(target.privateJwk)).privateKey;
    grantKid = target.kid;
    missions = Array.isArray(target.missions) ? [...target.missions] : undefined;
    signer = (kind, claims) => sign(kind, claims, grantKey, grantKid);
  } else {
    const t = (isContactCard(target) ? { nodeKey: target } : target) as ConnectTarget;
    if (t === null || typeof t !== 'object' || t.nodeKey === undefined) {
      throw new TypeError('connect(target) expects a grant file, a contact card or { nodeKey, address }');
    }
    const card = isContactCard(t.nodeKey) ? t.nodeKey : undefined;
    nodeJwk = publicKeyOf(t.nodeKey);
    address = t.address !== undefined ? t.address : (card?.address ?? null);
    grantKid = own.kid;
    signer = own.sign.bind(own);
    if (card !== undefined) {
      const id = shortId((await importPublic(nodeJwk)).thumbprint);
      if (card.id !== undefined && card.id !== id) {
        throw new WtdError('ERR_BAD_KEY', `this contact card says node ${card.id}, but its key is node ${id}'s`);
      }
    }
  }
  const nodeKey = await importPublic(nodeJwk);
  const nodeId = shortId(nodeKey.thumbprint);
  const via = options.via ?? (address !== null ? 'direct' : 'proxy');
  let link: Link;
  if (via === 'direct' || (options.via === undefined && !reachable)) {
    if (address === null) {
      throw new WtdError(
        'ERR_NO_ADDRESS',
        'this grant file has no address: the granting node was neither listening nor on a proxy when it made it',
      );
    }
    link = options.stream === false ? directLink(address) : sharedStreamLink(address, clock);
  } else if (proxy === undefined) {
    throw new WtdError(
      'ERR_NO_PROXY',
      `node ${nodeId} has no address to call directly; join a proxy first: await node.joinProxy({ url, email })`,
    );
  } else {
    link = proxy.link(nodeId);
  }
  return { link, via, nodeId, nodeKey: nodeKey.key, nodeKid: nodeKey.thumbprint, grantKid, signer, missions };
}
