/**
 * Process identifiers and references.
 * @module
 */

/**
 * Where a pid keeps the process it names when that process lives on this
 * node. A symbol key keeps it out of `JSON.stringify`, `Object.keys` and the
 * codec, and makes a local send a property read instead of a table lookup.
 * @internal
 */
export const PROCESS: unique symbol = Symbol('wtd.process');

/**
 * The id of the node a pid of another node lives on (its `node` is that
 * node's name, for people): two nodes may share a name, never an id. Set
 * only on pids of other nodes, so local pids carry nothing more.
 * @internal
 */
export const NODE_ID: unique symbol = Symbol('wtd.nodeId');

/**
 * Names one process: the node it lives on, a number unique on that node, and
 * a serial that tells apart node incarnations. Printed like Erlang's pids:
 * `<alice.42.0>`.
 *
 * A pid is a value; holding one does not keep its process alive, and sending
 * to a dead pid is silently dropped, as in Erlang.
 *
 * @example
 * ```ts
 * const pid: Pid = node.spawn(async (self) => console.log(await self.receive()));
 * node.send(pid, 'hello');
 * String(pid); // '<alice.1.0>'
 * ```
 */
export class Pid {
  /** The name of the node the process runs on. */
  readonly node: string;
  /** The process's number on its node. */
  readonly id: number;
  /** The node incarnation the process belongs to. */
  readonly serial: number;
  /** @internal */
  [PROCESS]: unknown;
  /** @internal */
  declare [NODE_ID]?: string;

  /** @internal */
  constructor(node: string, id: number, serial: number, process?: unknown) {
    this.node = node;
    this.id = id;
    this.serial = serial;
    this[PROCESS] = process;
  }

  /** True when both name the same process. */
  equals(other: unknown): boolean {
    return (
      other === this ||
      (other instanceof Pid &&
        other.id === this.id &&
        other.node === this.node &&
        other.serial === this.serial &&
        other[NODE_ID] === this[NODE_ID])
    );
  }

  toString(): string {
    return `<${this.node}.${this.id}.${this.serial}>`;
  }

  /** Pids print as their string form in JSON and logs. */
  toJSON(): string {
    return this.toString();
  }
}

let nextRef = 0;

/**
 * A unique reference, as made by Erlang's `make_ref()`: used to tag monitors,
 * calls and timers so their replies can be told apart. Compare with `===`.
 *
 * @example
 * ```ts
 * const ref: Ref = self.monitor(other);
 * const down = await self.receive((m) => isDown(m, ref));
 * ```
 */
export class Ref {
  /** A number unique within this program run. */
  readonly id: number;
  /** @internal The object the reference belongs to (a monitored process, a timer). */
  _owner: unknown;

  /** @internal */
  constructor(owner?: unknown) {
    this.id = ++nextRef;
    this._owner = owner;
  }

  toString(): string {
    return `#Ref<${this.id}>`;
  }

  toJSON(): string {
    return this.toString();
  }
}
