/**
 * What Alice's node in the abuse suite offers besides the README's greeter
 * (samples/greeter.ts): a process she hands out, the way a program gives a
 * grantee somewhere to send work. `Inbox.open()` returns its pid; it takes
 * one message every 100 ms, as a worker busy with each would.
 */
import { WtdExport, type Node, type Pid } from '../../lib/index.js';

export class Inbox {
  static #pid: Pid | undefined;
  /** Messages it has taken from its mailbox. */
  static taken = 0;

  /** The inbox's pid, handed to the caller. */
  @WtdExport('inbox')
  static open(): Pid {
    return Inbox.#pid!;
  }

  static start(node: Node): void {
    Inbox.#pid = node.spawn(async (self) => {
      for (;;) {
        await self.receive();
        Inbox.taken++;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    node.register('inbox', Inbox.#pid);
  }
}
