import 'reflect-metadata';

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
}

/**
 * Marks a method as callable by other nodes under `mission`
 * (the seed's `-wtd_export({mission, [fn/arity]})`). Static methods are
 * called on the class; instance methods on the instance the node loads.
 * Stack the decorator to put one method in several missions.
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
export function WtdExport(mission: string) {
  return (target: object, key: string | symbol, descriptor?: PropertyDescriptor): void => {
    const isStatic = typeof target === 'function';
    const owner = isStatic ? target : (target as { constructor: object }).constructor;
    const records: ExportRecord[] = Reflect.getOwnMetadata(EXPORTS_KEY, owner) ?? [];
    records.push({ mission, key, isStatic, isMethod: typeof descriptor?.value === 'function' });
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
