import { isIPv4, isIPv6 } from 'node:net';
import { ProxyRefusal } from '../errors.js';
import { live, type Live } from './live.js';
import { emailKey, type NodeRecord, type ProxyStore } from './store.js';

/** The bounds of registration. */
export interface RegistryLimits {
  maxNodes: number;
  maxNodesPerSource: number;
}

/**
 * The network a request comes from, as registrations are counted: an IPv4
 * address, or the /64 of an IPv6 one (what one home or one host is given).
 *
 * @example
 * ```ts
 * sourceOf('::ffff:127.0.0.2'); // '127.0.0.2'
 * sourceOf('2001:db8:1:2:3:4:5:6'); // '2001:db8:1:2::/64'
 * ```
 */
export function sourceOf(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * The registered nodes of a proxy, by id, key id and e-mail, with how many
 * came from each source: who may register, and one key per e-mail.
 */
export class Registry {
  readonly nodes = new Map<string, Live>();
  readonly #byKid = new Map<string, Live>();
  readonly #byEmail = new Map<string, Live>();
  readonly #perSource = new Map<string, number>();
  readonly #limits: RegistryLimits;

  constructor(store: ProxyStore, limits: RegistryLimits) {
    this.#limits = limits;
    const accepts = store.acceptCounts();
    for (const record of store.nodes()) this.add(record, accepts.get(record.id) ?? 0);
  }

  get size(): number {
    return this.nodes.size;
  }

  byKid(kid: string): Live | undefined {
    return this.#byKid.get(kid);
  }

  /**
   * Refuses, before its signature is checked, a registration that may not
   * be made: a new key when the proxy or its source holds as many nodes as
   * it may (`ERR_PROXY_FULL`), or an e-mail registered with another key
   * (`ERR_PROXY_EMAIL_TAKEN`).
   */
  admit(kid: string, email: string, source: string): void {
    const holder = this.#byEmail.get(emailKey(email));
    if (holder !== undefined && holder.record.kid !== kid) {
      throw new ProxyRefusal(
        'ERR_PROXY_EMAIL_TAKEN',
        409,
        `${email} is registered here with another key; if it is yours, ask the proxy's operator to remove the old one`,
      );
    }
    if (this.#byKid.has(kid)) return;
    if (this.nodes.size >= this.#limits.maxNodes) {
      throw new ProxyRefusal('ERR_PROXY_FULL', 503, 'the proxy has as many registered nodes as it may take');
    }
    if ((this.#perSource.get(source) ?? 0) >= this.#limits.maxNodesPerSource) {
      throw new ProxyRefusal(
        'ERR_PROXY_FULL',
        503,
        `the proxy has as many nodes registered from ${source} as it takes from one network`,
      );
    }
  }

  /** Holds a node registered now, or loaded from the store. */
  add(record: NodeRecord, accepts = 0): Live {
    const n = live(record, accepts);
    this.nodes.set(record.id, n);
    this.#byKid.set(record.kid, n);
    this.#index(n);
    this.#perSource.set(record.source, (this.#perSource.get(record.source) ?? 0) + 1);
    return n;
  }

  /** A node registered again, maybe with another e-mail or name. */
  rename(n: Live, email: string, name: string): void {
    this.#unindex(n);
    n.record.email = email;
    n.record.name = name;
    this.#index(n);
  }

  /** Lets a node go; returns it if it was held. */
  remove(id: string): Live | undefined {
    const n = this.nodes.get(id);
    if (n === undefined) return undefined;
    this.nodes.delete(id);
    this.#byKid.delete(n.record.kid);
    this.#unindex(n);
    const left = (this.#perSource.get(n.record.source) ?? 1) - 1;
    if (left > 0) this.#perSource.set(n.record.source, left);
    else this.#perSource.delete(n.record.source);
    return n;
  }

  // A proxy.db from before e-mails were unique may hold two keys for one: the first registered keeps it.
  #index(n: Live): void {
    const key = emailKey(n.record.email);
    if (!this.#byEmail.has(key)) this.#byEmail.set(key, n);
  }

  #unindex(n: Live): void {
    const key = emailKey(n.record.email);
    if (this.#byEmail.get(key) === n) this.#byEmail.delete(key);
  }
}
