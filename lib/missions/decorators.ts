import './reflect-metadata.js';

/** @internal Metadata key: the exports a class declares (own, not inherited). */
export const EXPORTS_KEY = 'wtd:exports';
/** @internal Metadata key: the missions a behaviour class is exposed under. */
export const BEHAVIOUR_KEY = 'wtd:behaviour';

/** @internal One `@WtdExport` as recorded; checked only when loaded. */
export interface ExportRecord {
  mission: unknown;
  key: string | symbol;
  isStatic: boolean;
  /** Whether the decorator saw a method (a property descriptor with a function value). */
  isMethod: boolean;
  /** The arity declared in the decorator's options, if any; checked when loaded. */
  arity?: unknown;
  /** Whether the decorator's options said running it twice is harmless. */
  idempotent?: boolean;
}

/**
 * Options of {@link WtdExport}.
 *
 * @example
 * ```ts
 * class Greeter {
 *   @WtdExport('greetings', { arity: { min: 0, max: 1 } }) // hello() and hello('bob')
 *   static hello(name?: string) { return `hello, ${name ?? 'stranger'}`; }
 * }
 * ```
 */
export interface ExportOptions {
  /**
   * How many arguments a caller must pass: a number, or `{ min, max }`
   * (`max` omitted: no upper bound). A call with another number is refused
   * before the function runs, `ERR_BAD_ARITY`. Default: from the function
   * itself, `min` its `length` (the parameters before the first one with a
   * default) and `max` the parameters it declares, unbounded with a rest
   * parameter. A TypeScript optional parameter (`name?: string`) compiles to
   * a plain one, so declare it here: `{ arity: { min: 0, max: 1 } }`.
   */
  arity?: number | { min: number; max?: number };
  /**
   * Running it twice with the same arguments is harmless (a read, a
   * computation, a write of the same value). A mission group retries a call
   * that may have run (`ERR_MAYBE_RAN`) on another member only when the
   * function is marked so; a reply says so to its caller. Default false.
   */
  idempotent?: boolean;
}

/**
 * Marks a method as callable by other nodes under `mission`
 * (the seed's `-wtd_export({mission, [fn/arity]})`). Static methods are
 * called on the class; instance methods on the instance the node loads.
 * Stack the decorator to put one method in several missions.
 *
 * A caller must pass as many arguments as the method takes (see
 * {@link ExportOptions.arity}); a call with another number is refused
 * before it runs, `ERR_BAD_ARITY`.
 *
 * It only records; nothing is checked or exposed until the class is loaded
 * into a node's mission table, and nothing is callable until a grant allows it.
 *
 * @example
 * ```ts
 * class Maths {
 *   @WtdExport('maths')
 *   static add(a: number, b: number) { return a + b; }
 * }
 * missionTable(node).load(Maths);
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export function WtdExport(mission: string, options: ExportOptions = {}) {
  return (target: object, key: string | symbol, descriptor?: PropertyDescriptor): void => {
    const isStatic = typeof target === 'function';
    const owner = isStatic ? target : (target as { constructor: object }).constructor;
    const records: ExportRecord[] = Reflect.getOwnMetadata(EXPORTS_KEY, owner) ?? [];
    const record: ExportRecord = { mission, key, isStatic, isMethod: typeof descriptor?.value === 'function' };
    if (options?.arity !== undefined) record.arity = options.arity;
    if (options?.idempotent === true) record.idempotent = true;
    records.push(record);
    Reflect.defineMetadata(EXPORTS_KEY, records, owner);
  };
}

/**
 * Exposes a behaviour class's client operations (a GenServer's `call` and
 * `cast`, a GenFsm's `send_event`, ...) under `mission`, for processes of
 * this class that are registered by name (the seed's `-wtd_behaviour(mission)`).
 * The class must extend GenServer, Supervisor, GenEvent, GenFsm or GenStatem;
 * that is checked when it is loaded.
 *
 * @example
 * ```ts
 * @WtdBehaviour('dev_mission')
 * export class Development extends GenServer<number> {
 *   override handleCall(request: unknown, _from: From, calls: number) {
 *     return reply({ request, calls: calls + 1 }, calls + 1);
 *   }
 * }
 * ```
 * (This example runs in `samples/development.ts`.)
 */
export function WtdBehaviour(mission: string) {
  return (target: object): void => {
    const missions: unknown[] = Reflect.getOwnMetadata(BEHAVIOUR_KEY, target) ?? [];
    missions.push(mission);
    Reflect.defineMetadata(BEHAVIOUR_KEY, missions, target);
  };
}
