/**
 * A module for `wtd start`: what "your first cluster" in the README runs.
 *
 * `wtd start dist/samples/greeter.js` loads the classes exported here and
 * calls `start(node)`, which starts a supervised visitor counter. Alice then
 * grants the `greetings` mission to a friend, who can call `Greeter.hello`
 * and the counter's `call`, and nothing else.
 */
import { GenServer, Supervisor, WtdBehaviour, WtdExport, reply, type From, type Node, type Pid } from '../lib/index.js';

/** Functions a friend may call, under the `greetings` mission. */
export class Greeter {
  // Saying hello twice is harmless: a mission group may send it to another member after ERR_MAYBE_RAN.
  @WtdExport('greetings', { idempotent: true })
  static hello(name: string): string {
    return `hello, ${name}, from ${Greeter.node?.name ?? 'a WTD node'}`;
  }

  /** Most messages one countdown sends: a caller's number is checked, as anything from the wire should be. */
  static readonly MAX_COUNTDOWN = 100;

  /** Sends `n` messages to the caller's process `pid`: a pid passed in a call can be answered. */
  @WtdExport('greetings')
  static countdown(pid: Pid, n: number): string {
    if (!Number.isInteger(n) || n < 0 || n > Greeter.MAX_COUNTDOWN) {
      throw new RangeError(`countdown takes a whole number from 0 to ${Greeter.MAX_COUNTDOWN}, got ${String(n)}`);
    }
    for (let i = n; i > 0; i--) Greeter.node!.send(pid, { countdown: i });
    return `sent ${n} messages`;
  }

  /** Not exported: nobody else can call it. */
  static secret(): string {
    return 'only for this node';
  }

  static node: Node | undefined;
}

/**
 * Counts visitors; `call('visit')` counts one, `call('count')` reads. It is
 * exposed to grantees, so nothing they send can make it throw: a request it
 * does not know reads the count.
 */
@WtdBehaviour('greetings')
export class Visitors extends GenServer<number> {
  override handleCall(request: 'visit' | 'count', _from: From, n: number) {
    return request === 'visit' ? reply(n + 1, n + 1) : reply(n, n);
  }
}

/** Keeps the visitor counter running. */
export class GreeterSupervisor extends Supervisor {
  override init() {
    return {
      strategy: 'one_for_one' as const,
      children: [
        {
          id: 'visitors',
          start: (parent: Parameters<typeof GenServer.startLink>[0]) =>
            GenServer.startLink(parent, new Visitors(), 0, { name: 'visitors' }),
        },
      ],
    };
  }
}

/** Called by `wtd start` once the classes are loaded. */
export async function start(node: Node): Promise<void> {
  Greeter.node = node;
  await Supervisor.start(node, new GreeterSupervisor(), undefined, { name: 'greeter_sup' });
}
