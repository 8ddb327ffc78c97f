import { expect } from 'chai';
import type { Node, Process } from '../../lib/index.js';
import { testNode } from '../fixtures/helpers.js';

/** One process sends `n` messages to another, yielding every 1024; `onReceive` sees the receiver before each receive. */
function flood(node: Node, n: number, onReceive: (self: Process) => void = () => undefined): Promise<void> {
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const rx = node.spawn(async (self) => {
    for (let i = 0; i < n; i++) {
      onReceive(self);
      await self.receive();
    }
    done();
  });
  node.spawn(async (self) => {
    for (let i = 0; i < n; i++) {
      self.send(rx, i);
      if ((i & 1023) === 1023) await self.yield();
    }
  });
  return finished;
}

describe('Scheduler', () => {
  it('keeps a 1 ms timer firing while a million messages flow', async () => {
    const { node } = testNode();
    const N = 1_000_000;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await flood(node, N);
    clearInterval(timer);
    // Without slicing, the whole flood runs in microtasks and the interval never fires.
    expect(ticks).to.be.greaterThan(2);
  });

  it("yield lets the processes a sender woke catch up, so its receiver's mailbox stays short", async () => {
    const { node } = testNode();
    const N = 100_000;
    let longest = 0;
    await flood(node, N, (self) => {
      longest = Math.max(longest, self.messageCount);
    });
    // Without it the sender runs ahead and nearly all N messages pile up. With it the backlog is a
    // couple of the sender's 1024-message bursts, a few more when the OS takes the CPU mid-slice
    // (slices are timed): a tenth of N tells the two apart on a busy machine too.
    expect(longest).to.be.below(N / 10);
  });

  it('two busy processes take turns instead of one running to the end', async () => {
    const { node } = testNode();
    const trace: string[] = [];
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    for (const name of ['a', 'b']) {
      node.spawn(async (self) => {
        for (let i = 0; i < 5; i++) {
          trace.push(name);
          await self.yield();
        }
        if (++done === 2) finish();
      });
    }
    await finished;
    expect(trace.join('')).to.equal('ababababab');
  });

  it('a mailbox backlog of a million is drained in order', async () => {
    const { node } = testNode();
    const N = 1_000_000;
    let ok = true;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const rx = node.spawn(async (self) => {
      await self.receive((m) => m === 'go');
      for (let i = 0; i < N; i++) if ((await self.receive()) !== i) ok = false;
      done();
    });
    for (let i = 0; i < N; i++) node.send(rx, i);
    node.send(rx, 'go');
    await finished;
    expect(ok).to.equal(true);
  });
});
