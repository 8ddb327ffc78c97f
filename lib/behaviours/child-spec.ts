import { SupervisorError, describeValue } from '../errors.js';
import type { Pid } from '../runtime/pid.js';
import type { Process } from '../runtime/process.js';

/**
 * When a child is restarted: always, only after an abnormal exit, or never.
 *
 * @example
 * ```ts
 * const child: ChildSpec = { id: 'job', restart: 'transient', start: (p) => GenServer.startLink(p, new Job(), 0) };
 * ```
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';
/**
 * How a child is stopped: killed at once, asked then killed after N ms, or asked and waited for.
 *
 * @example
 * ```ts
 * const child: ChildSpec = { id: 'db', shutdown: 2000, start: (p) => GenServer.startLink(p, new Db(), cfg) };
 * ```
 */
export type Shutdown = number | 'brutal_kill' | 'infinity';
/**
 * A worker, or a supervisor (whose default shutdown is `'infinity'`).
 *
 * @example
 * ```ts
 * const child: ChildSpec = { id: 'pool', type: 'supervisor', start: (p) => Supervisor.startLink(p, new Pool()) };
 * ```
 */
export type ChildType = 'worker' | 'supervisor';
/**
 * How a supervisor reacts when a child exits.
 *
 * @example
 * ```ts
 * override init(): SupervisorSpec {
 *   return { strategy: 'rest_for_one', children: [db, cache, web] };
 * }
 * ```
 */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one';

/**
 * How to start and look after one child (OTP's child specification).
 *
 * @example
 * ```ts
 * const spec: ChildSpec = {
 *   id: 'counter',
 *   start: (parent) => GenServer.startLink(parent, new Counter(), 0),
 *   restart: 'permanent',
 *   shutdown: 5000,
 * };
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export interface ChildSpec {
  /** Names the child within its supervisor. */
  id: string;
  /**
   * Starts the child linked to `parent` (the supervisor) and resolves with
   * its pid. Under `simple_one_for_one`, `extra` holds the arguments given to
   * `startChild`.
   */
  start: (parent: Process, ...extra: any[]) => Promise<Pid>;
  /** Default `'permanent'`. */
  restart?: RestartType;
  /** Default 5000 ms for a worker, `'infinity'` for a supervisor. */
  shutdown?: Shutdown;
  /** Default `'worker'`. */
  type?: ChildType;
}

/**
 * How a supervisor restarts, and how many restarts it tolerates.
 *
 * @example
 * ```ts
 * override init(): SupervisorSpec {
 *   return { strategy: 'one_for_all', intensity: 3, period: 10, children };
 * }
 * ```
 */
export interface SupervisorFlags {
  /** Default `'one_for_one'`. */
  strategy?: Strategy;
  /** At most this many restarts... Default 1. */
  intensity?: number;
  /** ...within this many seconds; one more and the supervisor gives up. Default 5. */
  period?: number;
}

/**
 * What a supervisor's `init` returns: its flags and its children, started in order.
 *
 * @example
 * ```ts
 * class App extends Supervisor {
 *   override init(): SupervisorSpec {
 *     return { children: [{ id: 'counter', start: (p) => GenServer.startLink(p, new Counter(), 0) }] };
 *   }
 * }
 * ```
 */
export interface SupervisorSpec extends SupervisorFlags {
  children: ChildSpec[];
}

/** @internal A child spec with every default filled in. */
export interface FullChildSpec {
  id: string;
  start: (parent: Process, ...extra: unknown[]) => Promise<Pid>;
  restart: RestartType;
  shutdown: Shutdown;
  type: ChildType;
}

/** @internal */
export interface FullFlags {
  strategy: Strategy;
  intensity: number;
  period: number;
}

/**
 * OTP's defaults, kept in one place.
 *
 * @example
 * ```ts
 * SUPERVISOR_DEFAULTS.intensity; // 1 restart...
 * SUPERVISOR_DEFAULTS.period; // ...in 5 seconds, as OTP
 * ```
 */
export const SUPERVISOR_DEFAULTS: Readonly<Required<SupervisorFlags>> = Object.freeze({
  strategy: 'one_for_one',
  intensity: 1,
  period: 5,
});
const DEFAULT_WORKER_SHUTDOWN = 5000;

const STRATEGIES: readonly string[] = ['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'];
const RESTARTS: readonly string[] = ['permanent', 'transient', 'temporary'];
const TYPES: readonly string[] = ['worker', 'supervisor'];

function bad(code: 'ERR_BAD_CHILD_SPEC' | 'ERR_BAD_SUPERVISOR_FLAGS', message: string): SupervisorError {
  return new SupervisorError(code, message);
}

/** @internal Checks supervisor flags; throws `ERR_BAD_SUPERVISOR_FLAGS` saying what was wrong. */
export function checkFlags(spec: unknown): FullFlags {
  if (spec === null || typeof spec !== 'object') {
    throw bad(
      'ERR_BAD_SUPERVISOR_FLAGS',
      `a supervisor's init must return { strategy, intensity, period, children }, got ${describeValue(spec)}`,
    );
  }
  const s = spec as SupervisorFlags;
  const strategy = s.strategy ?? SUPERVISOR_DEFAULTS.strategy;
  if (!STRATEGIES.includes(strategy)) {
    throw bad(
      'ERR_BAD_SUPERVISOR_FLAGS',
      `strategy must be one of ${STRATEGIES.join(', ')}, got ${describeValue(strategy)}`,
    );
  }
  const intensity = s.intensity ?? SUPERVISOR_DEFAULTS.intensity;
  if (!Number.isInteger(intensity) || intensity < 0) {
    throw bad('ERR_BAD_SUPERVISOR_FLAGS', `intensity must be a whole number >= 0, got ${describeValue(intensity)}`);
  }
  const period = s.period ?? SUPERVISOR_DEFAULTS.period;
  if (!(typeof period === 'number' && period > 0)) {
    throw bad('ERR_BAD_SUPERVISOR_FLAGS', `period must be a number of seconds > 0, got ${describeValue(period)}`);
  }
  return { strategy, intensity, period };
}

/** @internal Checks one child spec and fills in its defaults; throws `ERR_BAD_CHILD_SPEC`. */
export function checkChildSpec(spec: unknown): FullChildSpec {
  if (spec === null || typeof spec !== 'object') {
    throw bad('ERR_BAD_CHILD_SPEC', `a child spec must be an object { id, start, ... }, got ${describeValue(spec)}`);
  }
  const c = spec as ChildSpec;
  if (typeof c.id !== 'string' || c.id.length === 0) {
    throw bad('ERR_BAD_CHILD_SPEC', `a child spec needs a non-empty string id, got ${describeValue(c.id)}`);
  }
  if (typeof c.start !== 'function') {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}' needs start: (parent) => Promise<Pid>, got ${describeValue(c.start)}`,
    );
  }
  const restart = c.restart ?? 'permanent';
  if (!RESTARTS.includes(restart)) {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': restart must be one of ${RESTARTS.join(', ')}, got ${describeValue(restart)}`,
    );
  }
  const type = c.type ?? 'worker';
  if (!TYPES.includes(type)) {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': type must be 'worker' or 'supervisor', got ${describeValue(type)}`,
    );
  }
  const shutdown = c.shutdown ?? (type === 'supervisor' ? 'infinity' : DEFAULT_WORKER_SHUTDOWN);
  if (!(shutdown === 'brutal_kill' || shutdown === 'infinity' || (typeof shutdown === 'number' && shutdown >= 0))) {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': shutdown must be a number of ms >= 0, 'brutal_kill' or 'infinity', got ${describeValue(shutdown)}`,
    );
  }
  return { id: c.id, start: c.start, restart, shutdown, type };
}
