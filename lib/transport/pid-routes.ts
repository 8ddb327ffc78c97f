import type { KeyObject } from 'node:crypto';
import PQueue from 'p-queue';
import type { WallClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/node.js';
import { newClaims } from '../wire/claims.js';
import type { CodecContext, NodeCodec } from './codec-context.js';
import type { Signer } from './identity.js';
import type { Link } from './link.js';
import type { PidRoute } from './pid-registry.js';
import { refusalFrom } from './refusals.js';

/** How long a message to a remote pid may take to be accepted. */
const PID_SEND_TIMEOUT_MS = 10_000;

/** Who may send pid messages here: their key, and how what they send is decoded. */
interface Peer {
  key: KeyObject;
  context: CodecContext;
}

/**
 * The pid traffic of a node with others, both ways. Inbound: the peers whose
 * signed pid messages it accepts (a grantee, signing with its grant key; a
 * node it called, signing with its node key), by key id. Outbound: the
 * routes to pids other nodes handed it, kept per grant, and one ordered
 * queue per link, so that messages from this node to another arrive in the
 * order they were sent, as between Erlang processes. A peer's entry and its
 * routes go when {@link forget} is told the grant or connection ended; a
 * link's queue goes once it is empty.
 */
export class PidRoutes {
  readonly #codec: NodeCodec;
  readonly #clock: WallClock;
  readonly #logger: Logger;
  readonly #iss: string;
  readonly #peers = new Map<string, Peer>();
  // grant kid -> `${node id}@${link key}` -> route
  readonly #routes = new Map<string, Map<string, PidRoute>>();
  readonly #queues = new Map<string, PQueue>();

  constructor(deps: { codec: NodeCodec; clock: WallClock; logger: Logger; nodeId: string }) {
    this.#codec = deps.codec;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#iss = deps.nodeId;
  }

  /** Lets `kid` send pid messages here, decoded in `context`. */
  register(kid: string, key: KeyObject, context: CodecContext): void {
    this.#peers.set(kid, { key, context });
  }

  /** The key of a peer allowed to send pid messages here. */
  key(kid: string): KeyObject | undefined {
    return this.#peers.get(kid)?.key;
  }

  /** The key ids of the peers allowed to send pid messages here. */
  kids(): string[] {
    return [...this.#peers.keys()];
  }

  /** The codec context of a peer's messages. */
  context(kid: string): CodecContext | undefined {
    return this.#peers.get(kid)?.context;
  }

  /** Drops what is kept for `kid`: it may no longer send here, and its pids are no longer answered. */
  forget(kid: string): void {
    this.#peers.delete(kid);
    this.#routes.delete(kid);
  }

  /** How many peers and grants have state here, and how many links have messages on their way. */
  get held(): { peers: number; grants: number; links: number } {
    return { peers: this.#peers.size, grants: this.#routes.size, links: this.#queues.size };
  }

  /** How many links have messages on their way. */
  get size(): number {
    return this.#queues.size;
  }

  /**
   * How this node sends to pids that grantee `grantKid` handed it, at node
   * `nodeId` over `link`: signed by `signer`, only while the grant's
   * context says its sender is valid.
   */
  routeTo(nodeId: string, link: Link, grantKid: string, signer: Signer): PidRoute {
    let routes = this.#routes.get(grantKid);
    if (routes === undefined) {
      routes = new Map();
      this.#routes.set(grantKid, routes);
    }
    const key = `${nodeId}@${link.key}`;
    let route = routes.get(key);
    if (route === undefined) {
      route = {
        sendToPid: (id, token, msg) => {
          const context = this.context(grantKid);
          if (context === undefined || !context.sender.valid()) return;
          this.deliver(link, nodeId, id, token, msg, context, signer);
        },
      };
      routes.set(key, route);
    }
    return route;
  }

  /** {@link send}, with a failure logged rather than returned (a send never fails, as in Erlang). */
  deliver(
    link: Link,
    aud: string,
    id: number,
    token: string,
    msg: unknown,
    context: CodecContext,
    signer: Signer,
  ): void {
    this.send(link, aud, id, token, msg, context, signer).catch((err: unknown) =>
      this.#logger.error(`could not deliver a message to <${aud}.${id}.0>: ${(err as Error).message}`),
    );
  }

  /**
   * PUT /pid/<id> over `link`: `msg` encoded in `context` now, then signed
   * by `signer` and sent in order. A refusal keeps the callee's code.
   */
  send(
    link: Link,
    aud: string,
    id: number,
    token: string,
    msg: unknown,
    context: CodecContext,
    signer: Signer,
  ): Promise<void> {
    const path = `/pid/${id}`;
    const body = { token, msg: this.#codec.encode(msg, context) };
    return this.#queue(link).add(async () => {
      const claims = newClaims<'pid'>(this.#clock, { aud, iss: this.#iss, method: 'PUT', path, body });
      const res = await link.request(path, await signer('pid', claims), PID_SEND_TIMEOUT_MS);
      if (res.status !== 204) throw refusalFrom(res);
    });
  }

  /** Resolves once every message handed to {@link send} has been accepted or refused. */
  async onIdle(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.onIdle()));
  }

  #queue(link: Link): PQueue {
    let queue = this.#queues.get(link.key);
    if (queue === undefined) {
      const created = new PQueue({ concurrency: 1 });
      created.on('idle', () => {
        if (this.#queues.get(link.key) === created) this.#queues.delete(link.key);
      });
      this.#queues.set(link.key, created);
      queue = created;
    }
    return queue;
  }
}
