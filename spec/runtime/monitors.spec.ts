import { expect } from 'chai';
import { DownMessage, isDown, type Pid } from '../../lib/index.js';
import { flush, testNode } from '../fixtures/helpers.js';

describe('Process.monitor(target) and demonitor(ref)', () => {
  it('delivers DOWN with the reference and reason when the target exits', async () => {
    const { node } = testNode();
    const target = node.spawn(async (self) => {
      await self.receive();
      self.exit('bye');
    });
    let down: unknown;
    let ref: unknown;
    node.spawn(async (self) => {
      ref = self.monitor(target);
      down = await self.receive(isDown);
    });
    await flush();
    node.send(target, 'go');
    await flush();
    expect(down).to.be.instanceOf(DownMessage);
    expect((down as DownMessage).ref).to.equal(ref);
    expect(((down as DownMessage).pid as Pid).equals(target)).to.equal(true);
    expect((down as DownMessage).reason).to.equal('bye');
  });

  it('monitoring a dead process delivers DOWN with noproc at once', async () => {
    const { node } = testNode();
    const dead = node.spawn(async () => {});
    await node.exited(dead);
    let down: DownMessage | undefined;
    node.spawn(async (self) => {
      const ref = self.monitor(dead);
      down = (await self.receive((m) => isDown(m, ref))) as DownMessage;
    });
    await flush();
    expect(down!.reason).to.equal('noproc');
  });

  it('a monitor does not kill the watcher, unlike a link', async () => {
    const { node } = testNode();
    const target = node.spawn(async () => {
      throw new Error('x');
    });
    const watcher = node.spawn(async (self) => {
      self.monitor(target);
      await self.receive((m) => m === 'never');
    });
    await node.exited(target);
    await flush();
    expect(node.isAlive(watcher)).to.equal(true);
  });

  it('demonitor stops the monitor; flush removes a DOWN already queued', async () => {
    const { node } = testNode();
    const t1 = node.spawn(async (self) => {
      await self.receive();
    });
    const t2 = node.spawn(async (self) => {
      await self.receive();
    });
    const results: unknown[] = [];
    const watcher = node.spawn(async (self) => {
      const r1 = self.monitor(t1);
      results.push(self.demonitor(r1));
      const r2 = self.monitor(t2);
      await self.receive((m) => m === 'check');
      results.push(self.demonitor(r2, { flush: true }));
      results.push(self.messageCount);
    });
    await flush();
    expect(node.processInfo(watcher)!.monitors.map(String)).to.deep.equal([String(t2)]);
    expect(node.processInfo(t2)!.monitoredBy.map(String)).to.deep.equal([String(watcher)]);
    node.send(t1, 'go');
    node.send(t2, 'go');
    await flush();
    node.send(watcher, 'check');
    await flush();
    expect(results).to.deep.equal([true, false, 0]);
  });

  it('monitors held by a process are removed when it exits', async () => {
    const { node } = testNode();
    const target = node.spawn(async (self) => {
      await self.receive();
    });
    const watcher = node.spawn(async (self) => {
      self.monitor(target);
    });
    await node.exited(watcher);
    expect(node.processInfo(target)!.monitoredBy).to.deep.equal([]);
  });

  it('node.exited(pid) resolves noproc for a pid that is not alive', async () => {
    const { node } = testNode();
    const pid = node.spawn(async () => {});
    await node.exited(pid);
    expect(await node.exited(pid)).to.equal('noproc');
  });
});
