import { expect } from 'chai';
import { flush, testNode } from '../fixtures/helpers.js';

describe('Node.sendAfter(dest, msg, ms) and cancelTimer(ref)', () => {
  it('delivers after the delay, on the injected clock', async () => {
    const { node, clock } = testNode({ manual: true });
    const got: unknown[] = [];
    const pid = node.spawn(async (self) => {
      for (;;) got.push(await self.receive());
    });
    node.sendAfter(pid, 'late', 500);
    clock.advance(499);
    await flush();
    expect(got).to.deep.equal([]);
    clock.advance(1);
    await flush();
    expect(got).to.deep.equal(['late']);
  });

  it('cancelTimer stops delivery and returns the time left; false once fired', async () => {
    const { node, clock } = testNode({ manual: true });
    const got: unknown[] = [];
    const pid = node.spawn(async (self) => {
      for (;;) got.push(await self.receive());
    });
    const ref = node.sendAfter(pid, 'never', 500);
    clock.advance(200);
    expect(node.cancelTimer(ref)).to.equal(300);
    const fired = node.sendAfter(pid, 'fired', 10);
    clock.advance(1000);
    await flush();
    expect(got).to.deep.equal(['fired']);
    expect(node.cancelTimer(fired)).to.equal(false);
  });

  it('self.sendAfter sends to the process itself; a timer to a gone name is dropped', async () => {
    const { node, clock } = testNode({ manual: true });
    let got: unknown;
    node.spawn(async (self) => {
      self.sendAfter('tick', 100);
      got = await self.receive();
    });
    node.sendAfter('nobody', 'lost', 50);
    await flush();
    expect(() => clock.advance(100)).not.to.throw();
    await flush();
    expect(got).to.equal('tick');
  });

  it('refuses a negative delay', () => {
    const { node } = testNode();
    expect(() => node.sendAfter('x', 1, -1)).to.throw(TypeError);
  });
});
