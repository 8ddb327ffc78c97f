import { WireError } from '../errors.js';
import { GenEvent } from '../behaviours/gen-event.js';
import { GenFsm } from '../behaviours/gen-fsm.js';
import type { ServerRef } from '../behaviours/gen.js';
import { GenServer } from '../behaviours/gen-server.js';
import { GenStatem } from '../behaviours/gen-statem.js';
import { Supervisor, type ChildCounts, type ChildInfo } from '../behaviours/supervisor.js';

/**
 * One operation a grantee may ask of an exposed behaviour: how many
 * arguments it takes and how the callee runs it. `A` and `R` are the
 * argument and result types the client facade of `RemoteNode` shows.
 *
 * @example
 * ```ts
 * const op: BehaviourOp = BEHAVIOUR_OP_TABLE.gen_server.call;
 * op.arity; // 1
 * await op.run({ node, name: 'counter' }, ['get'], 5000); // what GenServer.call does
 * ```
 */
export interface BehaviourOp<A extends unknown[] = unknown[], R = unknown> {
  /** How many arguments it takes; a request with another number is refused before it runs. */
  readonly arity: A['length'];
  /**
   * The callback a class must define itself for the operation to be
   * offered, and the base class whose default it must override (the
   * defaults fail, and a grantee must not be able to crash a server
   * through one): without it the operation is refused, `ERR_NOT_SUPPORTED`.
   */
  readonly needs?: { readonly callback: string; readonly base: abstract new (...args: never[]) => unknown };
  /** Runs it on the callee against `ref`, `timeoutMs` being the caller's own timeout. */
  readonly run: (ref: ServerRef, args: A, timeoutMs: number) => unknown;
  /** Types only: never set. */
  readonly types?: { args: A; result: R };
}

function op<A extends unknown[], R>(
  arity: A['length'],
  run: (ref: ServerRef, args: A, timeoutMs: number) => unknown,
  needs?: BehaviourOp['needs'],
) {
  return Object.freeze(needs === undefined ? { arity, run } : { arity, run, needs }) as BehaviourOp<A, R>;
}

/**
 * Every operation of every behaviour a node can expose with
 * `@WtdBehaviour`, by OTP's names (the last segment of
 * `PUT /behaviour/<mission>/<name>/<op>`). The node's dispatch and the
 * client facades of `RemoteNode` (`genServer(…).call`, …, in camelCase) are
 * both derived from it: adding an operation is one line here.
 *
 * @example
 * ```ts
 * Object.keys(BEHAVIOUR_OP_TABLE.gen_server); // ['call', 'cast']
 * BEHAVIOUR_OP_TABLE.gen_event.call.arity; // 2: handler and request
 * ```
 */
export const BEHAVIOUR_OP_TABLE = Object.freeze({
  gen_server: {
    call: op<[request: unknown], unknown>(1, (ref, [request], t) => GenServer.call(ref, request, t), {
      callback: 'handleCall',
      base: GenServer,
    }),
    cast: op<[request: unknown], void>(1, (ref, [request]) => GenServer.cast(ref, request), {
      callback: 'handleCast',
      base: GenServer,
    }),
  },
  supervisor: {
    which_children: op<[], ChildInfo[]>(0, (ref) => Supervisor.whichChildren(ref)),
    count_children: op<[], ChildCounts>(0, (ref) => Supervisor.countChildren(ref)),
    start_child: op<[args: unknown[]], unknown>(1, (ref, [args]) => Supervisor.startChild(ref, args)),
    terminate_child: op<[id: string], void>(1, (ref, [id]) => Supervisor.terminateChild(ref, id)),
    restart_child: op<[id: string], unknown>(1, (ref, [id]) => Supervisor.restartChild(ref, id)),
  },
  gen_event: {
    notify: op<[event: unknown], void>(1, (ref, [event]) => GenEvent.notify(ref, event)),
    sync_notify: op<[event: unknown], void>(1, (ref, [event], t) => GenEvent.syncNotify(ref, event, t)),
    // A call to a handler with no handleCall of its own would crash it and remove it: refused instead.
    call: op<[handler: string, request: unknown], unknown>(2, async (ref, [handler, request], t) => {
      if (!(await GenEvent._answersCalls(ref, handler))) {
        throw new WireError('ERR_NOT_SUPPORTED', 404, `handler ${handler} does not take calls; nothing was run`);
      }
      return GenEvent.call(ref, handler, request, t);
    }),
    which_handlers: op<[], string[]>(0, (ref) => GenEvent.whichHandlers(ref)),
  },
  gen_fsm: {
    send_event: op<[event: unknown], void>(1, (ref, [event]) => GenFsm.sendEvent(ref, event)),
    sync_send_event: op<[event: unknown], unknown>(1, (ref, [event], t) => GenFsm.syncSendEvent(ref, event, t)),
    send_all_state_event: op<[event: unknown], void>(1, (ref, [event]) => GenFsm.sendAllStateEvent(ref, event), {
      callback: 'handleEvent',
      base: GenFsm,
    }),
    sync_send_all_state_event: op<[event: unknown], unknown>(
      1,
      (ref, [event], t) => GenFsm.syncSendAllStateEvent(ref, event, t),
      { callback: 'handleSyncEvent', base: GenFsm },
    ),
  },
  gen_statem: {
    call: op<[request: unknown], unknown>(1, (ref, [request], t) => GenStatem.call(ref, request, t)),
    cast: op<[request: unknown], void>(1, (ref, [request]) => GenStatem.cast(ref, request)),
  },
});

/**
 * The behaviours a class can expose, by OTP's names.
 *
 * @example
 * ```ts
 * const kind: BehaviourKind = missionTable(node).behaviourOf(new Counter(), 'dev_mission')!.kind; // 'gen_server'
 * ```
 */
export type BehaviourKind = keyof typeof BEHAVIOUR_OP_TABLE;

/**
 * The client operations each behaviour exposes under its mission (the last
 * URL segment): the names of {@link BEHAVIOUR_OP_TABLE}.
 *
 * @example
 * ```ts
 * BEHAVIOUR_OPS.gen_server; // ['call', 'cast']: what a grantee may do to an exposed GenServer
 * ```
 */
export const BEHAVIOUR_OPS: Readonly<Record<BehaviourKind, readonly string[]>> = Object.freeze(
  Object.fromEntries(
    Object.entries(BEHAVIOUR_OP_TABLE).map(([kind, ops]) => [kind, Object.freeze(Object.keys(ops))]),
  ) as Record<BehaviourKind, readonly string[]>,
);

/** The operation `op` of behaviour `kind`, if it has one. */
export function behaviourOp(kind: BehaviourKind, op: string): BehaviourOp | undefined {
  const ops = BEHAVIOUR_OP_TABLE[kind] as unknown as Record<string, BehaviourOp>;
  return Object.hasOwn(ops, op) ? ops[op] : undefined;
}

/**
 * True when class `cls` offers `op`: the operation needs no callback of its
 * own, or `cls` defines it rather than inheriting the base class's default.
 */
export function implementsOp(cls: abstract new (...args: never[]) => unknown, op: BehaviourOp): boolean {
  if (op.needs === undefined) return true;
  const own = (cls.prototype as Record<string, unknown>)[op.needs.callback];
  return typeof own === 'function' && own !== (op.needs.base.prototype as Record<string, unknown>)[op.needs.callback];
}

/**
 * An operation's name as its client method is called: `sync_send_event` → `syncSendEvent`.
 *
 * @example
 * ```ts
 * const name: CamelCase<'sync_send_event'> = 'syncSendEvent';
 * ```
 */
export type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;

/** `sync_send_event` → `syncSendEvent`, as the client facades name the operations. */
export function camelCase(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
