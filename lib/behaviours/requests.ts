/**
 * Asynchronous requests (OTP's `gen_server:send_request/2` and friends):
 * send a call now, collect its answer later, alone or from a collection.
 * @module
 */
import { NoProcError, ServerExitError } from '../errors.js';
import { PROCESS, Pid } from '../runtime/pid.js';
import { Process } from '../runtime/process.js';
import type { Node } from '../runtime/node.js';
import type { Timed } from '../runtime/timer-queue.js';
import { call, type CallSlot, type ServerRef } from './gen.js';
import { CallRequest } from './server-messages.js';

/**
 * How a request ended: the server's reply, or why there will be none
 * (OTP's `{reply, R}` and `{error, {Reason, ServerRef}}`).
 *
 * @example
 * ```ts
 * const res: Response<number> = await GenServer.waitResponse(GenServer.sendRequest(counter, 'get'), 1000) as Response<number>;
 * if ('reply' in res) console.log(res.reply);
 * else console.log('no reply:', res.error); // 'noproc', or the server's exit reason
 * ```
 */
export type Response<R = unknown> = { reply: R } | { error: unknown; server: ServerRef };

/**
 * A request sent with `GenServer.sendRequest`: wait for it with
 * `GenServer.waitResponse` or `GenServer.receiveResponse`, or look
 * with `GenServer.checkResponse`.
 *
 * @example
 * ```ts
 * const req: RequestId = GenServer.sendRequest(counter, 'get');
 * // ... other work ...
 * await GenServer.waitResponse(req, 1000); // => { reply: 0 }
 * ```
 */
export class RequestId {
  /** @internal */ _outcome: Response | undefined = undefined;
  /** @internal */ _slot: CallSlot | undefined = undefined;
  /** @internal */ _node: Node | undefined;
  /** @internal Waiting for this request to settle. */ _waiters: (() => void)[] = [];

  /** @internal */
  constructor(readonly server: ServerRef) {
    this._node = server instanceof Pid ? nodeOf(server) : server.node;
  }

  /** @internal */
  _settle(outcome: Response): void {
    if (this._outcome !== undefined) return;
    this._outcome = outcome;
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) w();
  }

  /** @internal Gives up on the reply: it is dropped when it comes. */
  _abandon(): void {
    this._settle({ error: 'abandoned', server: this.server });
    this._slot?._reply(undefined);
  }
}

function nodeOf(pid: Pid): Node | undefined {
  const proc = pid[PROCESS];
  return proc instanceof Process ? proc.node : undefined;
}

/**
 * A set of requests, each with a label, to collect answers from in the
 * order they come (OTP's request id collections, `reqids_new/0` ...).
 *
 * @example
 * ```ts
 * const reqs = new RequestIds<string>();
 * reqs.add(GenServer.sendRequest(a, 'get'), 'a');
 * reqs.add(GenServer.sendRequest(b, 'get'), 'b');
 * while (reqs.size > 0) {
 *   const res = await GenServer.waitResponse(reqs, 1000);
 *   if (res === 'timeout' || res === 'no_request') break;
 *   console.log(res.label, res); // whichever answered first
 * }
 * ```
 */
export class RequestIds<L = unknown> {
  /** @internal */ readonly _entries = new Map<RequestId, L>();

  /** Adds a request under `label`; returns this collection. */
  add(request: RequestId, label: L): this {
    if (!(request instanceof RequestId)) {
      throw new TypeError(`RequestIds.add(request, label) expects a RequestId from sendRequest, got ${typeof request}`);
    }
    this._entries.set(request, label);
    return this;
  }

  /** How many requests are in the collection. */
  get size(): number {
    return this._entries.size;
  }

  /** The requests and their labels (OTP's `reqids_to_list/1`). */
  toList(): [RequestId, L][] {
    return [...this._entries];
  }
}

/**
 * What a collection answers with: the response and the label it was added under.
 *
 * @example
 * ```ts
 * const res = await GenServer.waitResponse(reqs, 1000);
 * if (res !== 'timeout' && res !== 'no_request') console.log(res.label);
 * ```
 */
export type LabelledResponse<L> = Response & { label: L };

/**
 * Sends `request` to a GenServer as a call, without waiting for the answer
 * (OTP's `gen_server:send_request/2`; also `GenServer.sendRequest`). Collect
 * the answer later with `GenServer.waitResponse`, `GenServer.receiveResponse` or
 * `GenServer.checkResponse`, or add it to a {@link RequestIds} collection.
 *
 * @example
 * ```ts
 * const req = GenServer.sendRequest(counter, 'get');
 * await GenServer.waitResponse(req); // => { reply: 0 }
 * ```
 */
export function sendRequest(ref: ServerRef, request: unknown): RequestId {
  const id = new RequestId(ref);
  call(
    ref,
    (from) => {
      id._slot = from;
      return new CallRequest(request, from);
    },
    Infinity,
  ).then(
    (reply) => id._settle({ reply }),
    (err: unknown) => {
      const error = err instanceof NoProcError ? 'noproc' : err instanceof ServerExitError ? err.reason : err;
      id._settle({ error, server: ref });
    },
  );
  return id;
}

/** Resolves once `ready()` is true or `timeout` ms pass on `node`'s clock: true if ready. */
function until(node: Node | undefined, requests: RequestId[], ready: () => boolean, timeout: number): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  if (timeout === 0 || requests.length === 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    let done = false;
    const timer: Timed = {
      _at: 0,
      _seq: 0,
      _heapIndex: -1,
      _timeout: () => finish(false),
    };
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      if (timer._heapIndex >= 0) node?._timers.remove(timer);
      resolve(ok);
    };
    const check = (): void => {
      if (ready()) finish(true);
    };
    for (const r of requests) r._waiters.push(check);
    if (timeout !== Infinity && node !== undefined) node._timers.add(timer, timeout);
  });
}

function checkTimeout(timeout: number): void {
  if (!(timeout >= 0)) {
    throw new TypeError(`timeout must be a number of milliseconds >= 0 or Infinity, got ${String(timeout)}`);
  }
}

function firstSettled<L>(reqs: RequestIds<L>): [RequestId, L] | undefined {
  for (const entry of reqs._entries) if (entry[0]._outcome !== undefined) return entry;
  return undefined;
}

/**
 * Waits up to `timeout` ms (default: no limit) for the answer to a request,
 * or to the first answered request of a collection (which then leaves it);
 * also `GenServer.waitResponse`. Resolves with `{ reply }`, `{ error, server }`,
 * `'timeout'`, or, for an empty collection, `'no_request'`. A request that
 * timed out can be waited for again.
 *
 * @example
 * ```ts
 * const res = await GenServer.waitResponse(GenServer.sendRequest(counter, 'get'), 1000);
 * if (res !== 'timeout' && res !== 'no_request' && 'reply' in res) console.log(res.reply);
 * ```
 */
export function waitResponse<L>(
  request: RequestId | RequestIds<L>,
  timeout = Infinity,
): Promise<Response | LabelledResponse<L> | 'timeout' | 'no_request'> {
  return response(request, timeout, 'wait') as Promise<Response | LabelledResponse<L> | 'timeout' | 'no_request'>;
}

/**
 * As `GenServer.waitResponse`, but a request that times out is abandoned: its
 * reply will be dropped (OTP's `receive_response`; also `GenServer.receiveResponse`).
 *
 * @example
 * ```ts
 * await GenServer.receiveResponse(GenServer.sendRequest(slow, 'work'), 100); // => 'timeout', and it is forgotten
 * ```
 */
export function receiveResponse<L>(
  request: RequestId | RequestIds<L>,
  timeout = Infinity,
): Promise<Response | LabelledResponse<L> | 'timeout' | 'no_request'> {
  return response(request, timeout, 'receive') as Promise<Response | LabelledResponse<L> | 'timeout' | 'no_request'>;
}

/**
 * Looks without waiting: the answer if it has come, else `'no_reply'`
 * (`'no_request'` for an empty collection); also `GenServer.checkResponse`.
 * OTP's `check_response` tests a message the caller received; WTD's
 * replies do not pass through a mailbox, so this looks at the request itself.
 *
 * @example
 * ```ts
 * const req = GenServer.sendRequest(counter, 'get');
 * await GenServer.checkResponse(req); // => 'no_reply' (not answered yet) or { reply: 0 }
 * ```
 */
export function checkResponse<L>(
  request: RequestId | RequestIds<L>,
): Promise<Response | LabelledResponse<L> | 'no_reply' | 'no_request'> {
  return response(request, 0, 'check') as Promise<Response | LabelledResponse<L> | 'no_reply' | 'no_request'>;
}

/** waitResponse / receiveResponse / checkResponse, one body. */
async function response<L>(
  target: RequestId | RequestIds<L>,
  timeout: number,
  mode: 'wait' | 'receive' | 'check',
): Promise<Response | LabelledResponse<L> | 'timeout' | 'no_request' | 'no_reply'> {
  checkTimeout(timeout);
  const abandonOnTimeout = mode === 'receive';
  const missing = mode === 'check' ? 'no_reply' : 'timeout';
  if (target instanceof RequestId) {
    const ok = await until(target._node, [target], () => target._outcome !== undefined, timeout);
    if (ok) return target._outcome!;
    if (abandonOnTimeout) target._abandon();
    return missing;
  }
  if (!(target instanceof RequestIds)) {
    throw new TypeError(`expected a RequestId or RequestIds, got ${typeof target}`);
  }
  if (target.size === 0) return 'no_request';
  const requests = [...target._entries.keys()];
  const ok = await until(requests[0]!._node, requests, () => firstSettled(target) !== undefined, timeout);
  if (!ok) {
    if (abandonOnTimeout) {
      for (const r of requests) r._abandon();
      target._entries.clear();
    }
    return missing;
  }
  const [id, label] = firstSettled(target)!;
  target._entries.delete(id);
  return { ...id._outcome!, label };
}
