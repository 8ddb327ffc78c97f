import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { RemoteError, WireError } from '../errors.js';
import type { Link } from './link.js';
import type { ChildCounts, ChildInfo } from '../behaviours/supervisor.js';
import { MESSAGE_TTL_S, newMessageId, readKid, sign, underLoad, verify, type Claims } from '../wire/envelope.js';
import type { PidRoute, PidSender } from './pid-registry.js';
import type { WtdNode } from './wtd-node.js';

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

/**
 * Options of a remote call.
 *
 * @example
 * ```ts
 * await remote.call('Maths', 'slowSum', [list], { timeout: 30_000, mission: 'maths' });
 * ```
 */
export interface RemoteCallOptions {
  /** How long to wait for the reply, in ms. Default 5000. */
  timeout?: number;
  /** The mission to act under; default: the first granted mission that covers the target. */
  mission?: string;
}

/** @internal */
export interface Connection {
  link: Link;
  via: 'direct' | 'proxy';
  nodeId: string;
  nodeKey: KeyObject;
  nodeKid: string;
  grantKid: string;
  grantKey: KeyObject;
}

interface CodecContext {
  sender: PidSender;
  route: PidRoute;
}

/**
 * Another node, as reached with a grant: call its exported functions and
 * its exposed behaviours. Every request is signed with the grant's key and
 * every reply is checked against the node's key.
 *
 * Errors: `ERR_CALL_TIMEOUT` (no reply in time), `ERR_NODE_DOWN` (cannot
 * connect), a `WireError` with the remote's refusal code (`ERR_GRANT_REVOKED`,
 * `ERR_RATE_LIMITED` with `retryAfterS`, `ERR_MISSION_NOT_GRANTED`, ...), or a
 * `RemoteError` when the remote code threw.
 *
 * @example
 * ```ts
 * const remote = await bob.connect(grantFile);
 * await remote.call('Greeter', 'hello', ['bob']);
 * await remote.genServer('greetings', 'visitors').call('visit');
 * ```
 */
export class RemoteNode {
  /** The remote node's id. */
  readonly nodeId: string;
  /** How calls reach it: straight to its address, or through the proxy. */
  readonly via: 'direct' | 'proxy';
  readonly #wtd: WtdNode;
  readonly #conn: Connection;
  readonly #context: CodecContext;
  #closed = false;

  /** @internal */
  constructor(wtd: WtdNode, conn: Connection) {
    this.#wtd = wtd;
    this.#conn = conn;
    this.nodeId = conn.nodeId;
    this.via = conn.via;
    const route: PidRoute = {
      sendToPid: (id, token, msg) => {
        if (this.#closed) return;
        void wtd
          ._sendPid(conn.link, conn.nodeId, id, token, msg, this.#context, (claims) =>
            sign('pid', claims, conn.grantKey, conn.grantKid),
          )
          .catch((err: unknown) =>
            wtd.logger.error(`could not deliver a message to <${conn.nodeId}.${id}.0>: ${(err as Error).message}`),
          );
      },
    };
    // Our pids in calls are handed to the remote node; its pids come back through this connection.
    const sender: PidSender = { kid: conn.nodeKid, key: conn.nodeKey, valid: () => !this.#closed };
    this.#context = { sender, route };
    wtd._registerPeer(conn.nodeKid, conn.nodeKey, this.#context);
  }

  /** Calls `module.fn(...args)` on the remote node and resolves with its result. */
  call<R = unknown>(module: string, fn: string, args: unknown[] = [], options: RemoteCallOptions = {}): Promise<R> {
    return this.#request(`/apply/${enc(module)}/${enc(fn)}`, args, options, false) as Promise<R>;
  }

  /** Runs `module.fn(...args)` on the remote node without waiting for its result; resolves once accepted. */
  async cast(module: string, fn: string, args: unknown[] = [], options: RemoteCallOptions = {}): Promise<void> {
    await this.#request(`/apply/${enc(module)}/${enc(fn)}`, args, options, true);
  }

  /** A GenServer registered as `name` on the remote node, exposed under `mission`. */
  genServer(mission: string, name: string) {
    const op = this.#op(mission, name);
    return {
      call: <R = unknown>(request: unknown, options?: RemoteCallOptions) => op<R>('call', [request], options),
      cast: (request: unknown) => op<void>('cast', [request]),
    };
  }

  /** A Supervisor registered as `name` on the remote node, exposed under `mission`. */
  supervisor(mission: string, name: string) {
    const op = this.#op(mission, name);
    return {
      whichChildren: () => op<ChildInfo[]>('which_children', []),
      countChildren: () => op<ChildCounts>('count_children', []),
      startChild: (args: unknown[]) => op('start_child', [args]),
      terminateChild: (id: string) => op<void>('terminate_child', [id]),
      restartChild: (id: string) => op('restart_child', [id]),
    };
  }

  /** A GenEvent manager registered as `name` on the remote node, exposed under `mission`. */
  genEvent(mission: string, name: string) {
    const op = this.#op(mission, name);
    return {
      notify: (event: unknown) => op<void>('notify', [event]),
      syncNotify: (event: unknown, options?: RemoteCallOptions) => op<void>('sync_notify', [event], options),
      call: <R = unknown>(handler: string, request: unknown, options?: RemoteCallOptions) =>
        op<R>('call', [handler, request], options),
      whichHandlers: () => op<string[]>('which_handlers', []),
    };
  }

  /** A GenFsm registered as `name` on the remote node, exposed under `mission`. */
  genFsm(mission: string, name: string) {
    const op = this.#op(mission, name);
    return {
      sendEvent: (event: unknown) => op<void>('send_event', [event]),
      syncSendEvent: <R = unknown>(event: unknown, options?: RemoteCallOptions) =>
        op<R>('sync_send_event', [event], options),
      sendAllStateEvent: (event: unknown) => op<void>('send_all_state_event', [event]),
      syncSendAllStateEvent: <R = unknown>(event: unknown, options?: RemoteCallOptions) =>
        op<R>('sync_send_all_state_event', [event], options),
    };
  }

  /** @internal */
  _close(): void {
    this.#closed = true;
  }

  #op(mission: string, name: string) {
    return <R>(op: string, args: unknown[], options: RemoteCallOptions = {}): Promise<R> =>
      this.#request(
        `/behaviour/${enc(mission)}/${enc(name)}/${enc(op)}`,
        args,
        { ...options, mission },
        false,
      ) as Promise<R>;
  }

  #request(path: string, args: unknown[], options: RemoteCallOptions, cast: boolean): Promise<unknown> {
    return underLoad(() => this.#send(path, args, options, cast));
  }

  async #send(path: string, args: unknown[], options: RemoteCallOptions, cast: boolean): Promise<unknown> {
    const timeout = options.timeout ?? 5000;
    if (!(timeout > 0)) throw new RangeError(`timeout must be a number of ms > 0, got ${String(timeout)}`);
    const wtd = this.#wtd;
    const conn = this.#conn;
    // Encoding first: a function in the arguments fails here, before anything is sent.
    const body = wtd._encode(args, this.#context);
    const nowS = Math.floor(Date.now() / 1000);
    const claims: Claims = {
      id: newMessageId(),
      iat: nowS,
      exp: nowS + MESSAGE_TTL_S,
      aud: conn.nodeId,
      iss: wtd.id,
      method: 'PUT',
      path,
      body,
      timeout,
    };
    if (options.mission !== undefined) claims.mission = options.mission;
    if (wtd.address !== undefined) claims.addr = wtd.address;
    if (cast) claims.cast = true;
    const jws = await sign('call', claims, conn.grantKey, conn.grantKid);
    const res = await wtd._queueFor(conn.link).add(() => conn.link.request(path, jws, timeout), {
      throwOnTimeout: true,
    });
    if (res.status === 202 && cast) return undefined;
    if (res.contentType.startsWith('application/jose')) return this.#readReply(res.text, claims.id);
    let refusal: { error?: { code?: string; message?: string } } = {};
    try {
      refusal = JSON.parse(res.text) as typeof refusal;
    } catch {
      // not JSON: reported below with the status alone
    }
    const err = new WireError(
      refusal.error?.code ?? 'ERR_REMOTE_REFUSED',
      res.status,
      refusal.error?.message ?? `the node answered ${res.status}`,
    ) as WireError & { retryAfterS?: number };
    if (res.retryAfter !== undefined) err.retryAfterS = Number(res.retryAfter);
    throw err;
  }

  async #readReply(jws: string, id: string): Promise<unknown> {
    const wtd = this.#wtd;
    const kid = readKid(jws, 'reply');
    if (kid !== this.#conn.nodeKid)
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply was not signed by the node we called');
    const claims = await verify(jws, this.#conn.nodeKey);
    if (claims.id !== id || claims.aud !== wtd.id || claims.iss !== this.#conn.nodeId) {
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply does not answer this request');
    }
    const body = claims.body as { ok?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
    if (body !== undefined && body !== null && 'error' in body && body.error !== undefined) {
      throw new RemoteError(
        String(body.error.code ?? 'ERR_REMOTE_EXCEPTION'),
        String(body.error.message ?? 'the remote call failed'),
      );
    }
    if (body === undefined || body === null || !('ok' in body))
      throw new WireError('ERR_BAD_REPLY', 502, 'the reply carries no result');
    return wtd._decode(body.ok as never, this.#context);
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
