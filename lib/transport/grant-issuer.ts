import type { JWK } from 'jose';
import type { WallClock } from '../runtime/clock.js';
import type { GrantRecord, GrantStore, RateLimit } from '../security/grant-store.js';
import { exportPrivate, importPublic, newKeyPair, shortId } from '../security/keys.js';
import { parseRate } from '../security/rate-limiter.js';
import { publicKeyOf, type ContactCard } from './contact-card.js';
import type { NodeIdentity } from './identity.js';

/**
 * Options for {@link WtdNode.grant}.
 *
 * @example
 * ```ts
 * await alice.grant({ missions: ['greetings'], rate: '10/s', expires: 7 * 86_400_000, label: 'bob', to: bobKey });
 * ```
 */
export interface GrantOptions {
  missions: string[];
  /** `'10/s'`, `'100/min'`..., or a {@link RateLimit}. */
  rate: string | RateLimit;
  /**
   * A rate of their own for pid messages (both ways: to the pids this node
   * hands the grantee, and to the grantee's pids). Without it they spend
   * {@link rate} with calls and casts.
   */
  messageRate?: string | RateLimit;
  /** When the grant ends: a Date, or a lifetime in ms. */
  expires?: Date | number;
  label?: string;
  /**
   * The grantee's public key, or their contact card (the safer way: their
   * private key never moves). Without it a key pair is made and put in the
   * grant file.
   */
  to?: JWK | ContactCard;
}

/**
 * What Alice hands Bob in the seed's way of granting: a key pair made for
 * him, bound on her node to some missions, and how to reach and recognise
 * her node. Whoever holds it can use the grant: keep it secret.
 *
 * @example
 * ```ts
 * const grantFile: GrantFile = await alice.grant({ missions: ['greetings'], rate: '10/s' });
 * writeFileSync('bob.grant', JSON.stringify(grantFile), { mode: 0o600 }); // give it to Bob privately
 * ```
 */
export interface GrantFile {
  wtd: 'grant';
  version: 1;
  node: {
    id: string;
    name: string;
    /** Where the node listens, or null. */
    address: string | null;
    /** The proxy the node had joined when it made the grant, or null (absent in older files). */
    proxy?: string | null;
    publicJwk: JWK;
  };
  kid: string;
  privateJwk: JWK;
  missions: string[];
  expiresAt: number | null;
}

const MISSION = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * Makes and ends grants: checks what is asked, stores the record, and
 * writes the grant file a grantee needs (the node's id, key and where it can
 * be reached). It needs the store, the node's identity, its clock, and where
 * the node is reachable now.
 */
export class GrantIssuer {
  readonly #store: GrantStore;
  readonly #identity: NodeIdentity;
  readonly #name: string;
  readonly #clock: WallClock;
  readonly #whereabouts: () => { address: string | null; proxy: string | null };
  readonly #ended: (kid: string) => void;

  constructor(deps: {
    store: GrantStore;
    identity: NodeIdentity;
    name: string;
    clock: WallClock;
    whereabouts: () => { address: string | null; proxy: string | null };
    ended: (kid: string) => void;
  }) {
    this.#store = deps.store;
    this.#identity = deps.identity;
    this.#name = deps.name;
    this.#clock = deps.clock;
    this.#whereabouts = deps.whereabouts;
    this.#ended = deps.ended;
  }

  async grant(options: GrantOptions): Promise<GrantRecord | GrantFile> {
    const missions = options?.missions;
    if (
      !Array.isArray(missions) ||
      missions.length === 0 ||
      !missions.every((m) => typeof m === 'string' && MISSION.test(m))
    ) {
      throw new TypeError(
        `grant({ missions }) expects a non-empty list of mission names, got ${JSON.stringify(missions)}`,
      );
    }
    const rate = readRate('rate', options.rate);
    const messageRate = options.messageRate === undefined ? null : readRate('messageRate', options.messageRate);
    const now = this.#clock.now();
    const expiresAt =
      options.expires === undefined
        ? null
        : options.expires instanceof Date
          ? options.expires.getTime()
          : now + options.expires;
    let publicJwk: JWK;
    let kid: string;
    let privateJwk: JWK | undefined;
    // A grant to a node's own key is used by that node only; an issued key by whichever node uses it first.
    let iss: string | null = null;
    if (options.to !== undefined) {
      const to = publicKeyOf(options.to);
      const imported = await importPublic(to);
      publicJwk = { kty: to.kty, crv: to.crv, x: to.x };
      kid = imported.thumbprint;
      iss = shortId(kid);
    } else {
      const pair = await newKeyPair();
      publicJwk = pair.publicJwk;
      kid = pair.thumbprint;
      privateJwk = await exportPrivate(pair);
    }
    const record: GrantRecord = {
      kid,
      label: options.label ?? '',
      missions: [...missions],
      publicJwk,
      rate,
      expiresAt,
      createdAt: now,
      revokedAt: null,
      uses: 0,
      lastUsedAt: null,
      iss,
      messageRate,
    };
    this.#store.addGrant(record);
    if (privateJwk === undefined) return record;
    const { address, proxy } = this.#whereabouts();
    return {
      wtd: 'grant',
      version: 1,
      node: { id: this.#identity.id, name: this.#name, address, proxy, publicJwk: this.#identity.publicJwk },
      kid,
      privateJwk,
      missions: record.missions,
      expiresAt,
    };
  }

  /** Revokes grant `kid` at once and for good; false if there is no such grant. */
  revoke(kid: string): boolean {
    const done = this.#store.revoke(kid, this.#clock.now());
    if (done) this.#ended(kid);
    return done;
  }
}

function readRate(option: 'rate' | 'messageRate', given: string | RateLimit): RateLimit {
  const rate = typeof given === 'string' ? parseRate(given) : given;
  if (!(rate?.count >= 1 && rate.intervalMs > 0 && rate.burst >= 1)) {
    throw new RangeError(
      `grant({ ${option} }) expects '10/s' or { count, intervalMs, burst }, got ${JSON.stringify(given)}`,
    );
  }
  return rate;
}
