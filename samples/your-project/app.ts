/**
 * README's "Use WTD in your own project": its module, verbatim but for the
 * import path (spec/docs/readme checks it is, and runs it under wtd start).
 */
import { GenServer, WtdBehaviour, WtdExport, reply, type From, type Node } from '../../lib/index.js';

@WtdBehaviour('greetings') // friends granted 'greetings' may call it by its registered name
export class Counter extends GenServer<number> {
  override handleCall(_request: 'get', _from: From, n: number) {
    return reply(n, n);
  }
}

export class Greeter {
  @WtdExport('greetings') // Greeter/hello/1: a call with another number of arguments is refused
  static hello(name: string) {
    return `hello, ${name}`;
  }
}

export async function start(node: Node): Promise<void> {
  await GenServer.start(node, new Counter(), 0, { name: 'counter' });
}
