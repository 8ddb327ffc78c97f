/**
 * Every error WTD throws on purpose is a {@link WtdError} with a stable
 * `code`. Catch by class or by `code`; the message is for people and may
 * change between versions.
 *
 * Misuse of the API (a wrong argument type, a negative timeout) is a plain
 * `TypeError` or `RangeError` that says what was expected and what was given.
 *
 * @example
 * ```ts
 * try {
 *   await GenServer.call(pid, 'ping', 100);
 * } catch (err) {
 *   if (err instanceof WtdError && err.code === 'ERR_CALL_TIMEOUT') {
 *     // the server was too slow; try again later
 *   }
 * }
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 * @module
 */
import { isErrorCode, type ErrorCode } from './error-codes.js';

/**
 * Options shared by every WTD error.
 *
 * @example
 * ```ts
 * throw new WtdError('ERR_STORE', 'the grant store could not be opened', { cause: err });
 * ```
 */
export interface WtdErrorOptions {
  /** The lower-level error that caused this one, if any. */
  cause?: unknown;
}

/**
 * The base class of every error WTD throws on purpose.
 *
 * @example
 * ```ts
 * try {
 *   await GenServer.call(ref, 'get');
 * } catch (err) {
 *   if (err instanceof WtdError) console.log(err.code); // e.g. 'ERR_NOPROC'
 * }
 * ```
 */
export class WtdError extends Error {
  /** A stable identifier such as `ERR_NOPROC` (one of `ERROR_CODES`); match on this, not on the message. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: WtdErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * The process named in an operation is not alive (OTP's `noproc`).
 *
 * @example
 * ```ts
 * await GenServer.call({ node, name: 'nobody' }, 'get'); // rejects: NoProcError, code 'ERR_NOPROC'
 * ```
 */
export class NoProcError extends WtdError {
  /** The pid or name that was looked up. */
  readonly target: unknown;
  constructor(target: unknown, message?: string) {
    super(
      'ERR_NOPROC',
      message ?? `no process is alive at ${String(target)}; check that it was started and has not exited`,
    );
    this.target = target;
  }
}

/**
 * A synchronous call got no reply within its timeout (OTP's `timeout`).
 *
 * @example
 * ```ts
 * try {
 *   await GenServer.call(slowServer, 'work', 100);
 * } catch (err) {
 *   if (err instanceof CallTimeoutError) console.log(`no reply in ${err.timeout} ms`);
 * }
 * ```
 */
export class CallTimeoutError extends WtdError {
  /** The timeout that ran out, in milliseconds. */
  readonly timeout: number;
  constructor(target: unknown, timeout: number) {
    super(
      'ERR_CALL_TIMEOUT',
      `call to ${String(target)} got no reply within ${timeout} ms; the server may be busy or stuck, ` +
        'raise the timeout or look at what the server is doing',
    );
    this.timeout = timeout;
  }
}

/**
 * A process made a synchronous call to itself, which could never be answered.
 *
 * @example
 * ```ts
 * // inside handleCall of the server registered as 'me':
 * await GenServer.call({ node, name: 'me' }, 'x'); // rejects at once: CallingSelfError, 'ERR_CALLING_SELF'
 * ```
 */
export class CallingSelfError extends WtdError {
  constructor(target: unknown) {
    super(
      'ERR_CALLING_SELF',
      `${String(target)} tried to call itself; a server cannot answer its own call while handling one. ` +
        'Do the work directly, or cast to yourself instead',
    );
  }
}

/**
 * The server exited while a caller was waiting for its reply.
 *
 * @example
 * ```ts
 * try {
 *   await GenServer.call(counter, 'crash');
 * } catch (err) {
 *   if (err instanceof ServerExitError) console.log(formatReason(err.reason)); // why the server exited
 * }
 * ```
 */
export class ServerExitError extends WtdError {
  /** The reason the server exited with. */
  readonly reason: unknown;
  constructor(target: unknown, reason: unknown) {
    super('ERR_SERVER_EXITED', `${String(target)} exited with reason ${formatReason(reason)} before it replied`);
    this.reason = reason;
  }
}

/**
 * A behaviour callback returned something that is not one of its documented results.
 *
 * @example
 * ```ts
 * class Broken extends GenServer<number> {
 *   override handleCall() {
 *     return 42 as never; // not reply(...) / noreply(...): the server stops with BadReturnValueError
 *   }
 * }
 * ```
 */
export class BadReturnValueError extends WtdError {
  /** What the callback returned. */
  readonly value: unknown;
  constructor(callback: string, value: unknown, expected: string) {
    super('ERR_BAD_RETURN_VALUE', `${callback} returned ${describeValue(value)}; expected ${expected}`);
    this.value = value;
  }
}

/**
 * A behaviour could not be started: its `init` stopped, threw, or asked to be ignored.
 *
 * @example
 * ```ts
 * try {
 *   await GenServer.start(node, new NeedsConfig(), undefined);
 * } catch (err) {
 *   if (err instanceof StartError) console.log(err.code); // 'ERR_START_FAILED', 'ERR_START_IGNORED' or 'ERR_START_TIMEOUT'
 * }
 * ```
 */
export class StartError extends WtdError {
  /** The reason `init` gave (or the error it threw). */
  readonly reason: unknown;
  constructor(code: 'ERR_START_FAILED' | 'ERR_START_IGNORED' | 'ERR_START_TIMEOUT', reason: unknown, message: string) {
    super(code, message, reason instanceof Error ? { cause: reason } : undefined);
    this.reason = reason;
  }
}

/**
 * A registered name is already taken, or the process already has a name.
 *
 * @example
 * ```ts
 * node.register('db', pid);
 * node.register('db', other); // throws NameError, code 'ERR_NAME_TAKEN'
 * ```
 */
export class NameError extends WtdError {
  /** The name involved. */
  readonly nameTaken: string;
  constructor(code: 'ERR_NAME_TAKEN' | 'ERR_ALREADY_NAMED' | 'ERR_ALREADY_STARTED', name: string, message: string) {
    super(code, message);
    this.nameTaken = name;
  }
}

/**
 * A supervisor operation was refused; `code` says why.
 *
 * @example
 * ```ts
 * await Supervisor.terminateChild(sup, 'nope'); // rejects: SupervisorError, code 'ERR_CHILD_NOT_FOUND'
 * ```
 */
export class SupervisorError extends WtdError {}

/**
 * A gen_event operation was refused; `code` says why.
 *
 * @example
 * ```ts
 * await GenEvent.deleteHandler(manager, 'NotThere'); // rejects: GenEventError, code 'ERR_HANDLER_NOT_FOUND'
 * ```
 */
export class GenEventError extends WtdError {}

/**
 * A class, method or mission name could not be loaded into a node's mission table.
 *
 * @example
 * ```ts
 * missionTable(node).load(class Empty {}); // throws MissionError, code 'ERR_NOTHING_EXPORTED'
 * ```
 */
export class MissionError extends WtdError {}

/**
 * A value that cannot be sent to another node (a function, a class
 * instance, a cycle...). Thrown in the caller, before anything is sent.
 *
 * @example
 * ```ts
 * await remote.call('Greeter', 'hello', [() => 'a function']); // rejects before sending: 'ERR_NOT_SERIALIZABLE'
 * ```
 */
export class NotSerializableError extends WtdError {
  /** The offending value. */
  readonly value: unknown;
  constructor(value: unknown, message: string) {
    super('ERR_NOT_SERIALIZABLE', `${message}; send plain data instead`);
    this.value = value;
  }
}

/**
 * A request refused on the wire, before any user code ran. `status` is the
 * HTTP status the server answers with; `code` says which check refused it.
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Greeter', 'hello', ['bob']);
 * } catch (err) {
 *   if (err instanceof WireError) console.log(err.status, err.code); // e.g. 429 'ERR_RATE_LIMITED'
 * }
 * ```
 */
export class WireError extends WtdError {
  /** The HTTP status of the refusal. */
  readonly status: number;
  constructor(code: ErrorCode, status: number, message: string, options?: WtdErrorOptions) {
    super(code, message, options);
    this.status = status;
  }
}

/**
 * Renders an exit reason the way a beginner expects to read it:
 * strings as they are, errors by their message, other values as JSON.
 *
 * @example
 * ```ts
 * formatReason(new Error('boom')); // 'Error: boom'
 * formatReason('normal'); // 'normal'
 * ```
 */
export function formatReason(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  return describeValue(reason);
}

/** A short, safe rendering of any value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'})`;
  if (typeof value === 'symbol' || typeof value === 'bigint') return value.toString();
  if (value !== null && typeof value === 'object') {
    const custom = (value as { toString?: () => string }).toString;
    if (typeof custom === 'function' && custom !== Object.prototype.toString) {
      return String(value);
    }
  }
  try {
    const text = JSON.stringify(value);
    return text.length > 120 ? `${text.slice(0, 117)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * The remote node could not be reached (connection refused, reset, DNS): OTP's `nodedown`.
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Greeter', 'hello', ['bob']);
 * } catch (err) {
 *   if (err instanceof NodeDownError) console.log('the node is off; try another');
 * }
 * ```
 */
export class NodeDownError extends WtdError {
  constructor(address: string, options?: WtdErrorOptions, what: 'node' | 'proxy' = 'node') {
    super(
      'ERR_NODE_DOWN',
      `the ${what} at ${address} cannot be reached; check that it is running and the address is right`,
      options,
    );
  }
}

/**
 * The remote function or behaviour threw; `code` is its code if it was a WtdError, else `ERR_REMOTE_EXCEPTION`.
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Maths', 'divide', [1, 0]);
 * } catch (err) {
 *   if (err instanceof RemoteError) console.log(err.message); // the remote exception's message, no stack
 * }
 * ```
 */
export class RemoteError extends WtdError {
  /** The code the remote side gave, as it gave it (it may be an application's own). */
  readonly remoteCode: string;
  constructor(remoteCode: string, message: string) {
    super(isErrorCode(remoteCode) ? remoteCode : 'ERR_REMOTE_EXCEPTION', message);
    this.remoteCode = remoteCode;
  }
}

/**
 * A remote call was sent and no answer came before its deadline, or the
 * connection died after it was sent: the remote code **may have run**.
 * Retry it only if running it twice is harmless (an idempotent function).
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Bank', 'transfer', [from, to, 10]);
 * } catch (err) {
 *   if (err instanceof MaybeRanError) console.log('check the balance before trying again');
 * }
 * ```
 */
export class MaybeRanError extends WtdError {
  constructor(target: string, why: string, options?: WtdErrorOptions) {
    super(
      'ERR_MAYBE_RAN',
      `the call to ${target} was sent and ${why}: it may have run. Retry only if running it twice is harmless`,
      options,
    );
  }
}

/**
 * What became of a failed remote call, as far as its caller can know:
 * - `'not_run'`: refused before running (grant, mission, rate, queue full,
 *   node down before anything was sent, deadline passed before it started,
 *   cancelled before it was handed over): safe to retry, anywhere;
 * - `'ran'`: it ran and failed (`ERR_REMOTE_EXCEPTION` and the other codes
 *   of a {@link RemoteError}), or it ran before and its answer is lost
 *   (`ERR_ALREADY_RAN`);
 * - `'maybe_ran'`: `ERR_MAYBE_RAN`, and the failures that leave it open (an
 *   answer that could not be read, `ERR_BAD_REPLY`; a node that failed while
 *   handling it, `ERR_INTERNAL`; a refusal WTD cannot read, `ERR_REMOTE_REFUSED`).
 *
 * @example
 * ```ts
 * const outcome: CallOutcome = outcomeOf(err); // 'not_run' | 'ran' | 'maybe_ran'
 * ```
 */
export type CallOutcome = 'not_run' | 'ran' | 'maybe_ran';

const MAYBE_RAN = new Set<string>(['ERR_MAYBE_RAN', 'ERR_BAD_REPLY', 'ERR_INTERNAL', 'ERR_REMOTE_REFUSED']);

/**
 * Which of the three things happened to a remote call that failed with
 * `err` (see {@link CallOutcome}). The rule in one sentence: a call that did
 * not run may be retried anywhere; one that may have run, only if it is
 * idempotent.
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Maths', 'add', [1, 2]);
 * } catch (err) {
 *   if (outcomeOf(err) === 'not_run') await other.call('Maths', 'add', [1, 2]);
 * }
 * ```
 */
export function outcomeOf(err: unknown): CallOutcome {
  if (err instanceof RemoteError) return 'ran';
  if (!(err instanceof WtdError)) return 'maybe_ran';
  if (MAYBE_RAN.has(err.code)) return 'maybe_ran';
  if (err.code === 'ERR_ALREADY_RAN') return 'ran';
  return 'not_run';
}

/**
 * A call over the grant's rate (HTTP 429), in the callee and in the caller:
 * `retryAfterS` says when a token is free again.
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Greeter', 'hello', ['bob']);
 * } catch (err) {
 *   if (err instanceof RateLimitedError) await new Promise((r) => setTimeout(r, err.retryAfterS * 1000));
 * }
 * ```
 */
export class RateLimitedError extends WireError {
  /** Seconds until the grant has a token again. */
  readonly retryAfterS: number;
  constructor(retryAfterS: number) {
    super('ERR_RATE_LIMITED', 429, `over the grant's rate; retry in ${retryAfterS} s`);
    this.retryAfterS = retryAfterS;
  }
}

/**
 * A refusal of the proxy itself (its bounds and registrations), with an
 * `ERR_PROXY_*` code and its HTTP status. A request the proxy refuses for its
 * envelope (signature, time, replay, size) has the same code a node gives.
 *
 * @example
 * ```ts
 * try {
 *   await remote.call('Greeter', 'hello', ['bob']);
 * } catch (err) {
 *   if (err instanceof ProxyRefusal && err.code === 'ERR_PROXY_QUEUE_FULL') console.log('the other node is not collecting');
 * }
 * ```
 */
export class ProxyRefusal extends WireError {}

/**
 * A data directory already in use by a running node (in this program or another).
 * `pid` is the process that holds it, when known.
 *
 * @example
 * ```ts
 * try {
 *   await WtdNode.start({ name: 'alice', dataDir: './alice' });
 * } catch (err) {
 *   if (err instanceof DataDirLockedError) console.log(`stop process ${err.pid} first`);
 * }
 * ```
 */
export class DataDirLockedError extends WtdError {
  /** The process id of the node that holds the directory, if it could be read. */
  readonly pid: number | undefined;
  constructor(dataDir: string, pid: number | undefined, options?: WtdErrorOptions) {
    super(
      'ERR_DATA_DIR_LOCKED',
      `another node is running in ${dataDir}${pid === undefined ? '' : ` (process ${pid})`}: stop it first, ` +
        'or give this one its own --data-dir',
      options,
    );
    this.pid = pid;
  }
}

/**
 * A `wtd` command that cannot do what it was asked: a command line it
 * cannot run (`ERR_USAGE`), a file, grant or node it names that does not
 * exist (`ERR_MISSING`), a grant of a mission the node does not offer
 * (`ERR_UNKNOWN_MISSION`), a module file that failed to load
 * (`ERR_MODULE_LOAD`), or a command stopped by Ctrl-C (`ERR_INTERRUPTED`).
 * `hint` says what to do next, when the message does not.
 *
 * @example
 * ```ts
 * // wtd grant --missions nope --rate 1/s --out x.grant --json   (exit 1), on stdout:
 * // { "error": { "code": "ERR_UNKNOWN_MISSION", "message": "alice does not offer the mission nope", ... } }
 * const err = new CommandError('ERR_USAGE', 'wtd grants takes no arguments', { hint: 'wtd grants --help' });
 * ```
 */
export class CommandError extends WtdError {
  /** What to do next, in the command's words; undefined when the message says it already. */
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, options?: WtdErrorOptions & { hint?: string }) {
    super(code, message, options);
    this.hint = options?.hint;
  }
}
