import { expect } from 'chai';
import { ExitMessage, isExit, type Pid } from '../../lib/index.js';
import { flush, testNode } from '../fixtures/helpers.js';

describe('Process.link(pid) and exit signals', () => {
  it('an abnormal exit kills linked processes with the same reason', async () => {
    const { node } = testNode();
    const a = node.spawn(async (self) => {
      await self.receive();
      throw new Error('a failed');
    });
    const b = node.spawn(async (self) => {
      self.link(a);
      await self.receive();
    });
    await flush();
    node.send(a, 'go');
    const reason = await node.exited(b);
    expect((reason as Error).message).to.equal('a failed');
  });

  it("a 'normal' exit does not kill linked processes", async () => {
    const { node } = testNode();
    const a = node.spawn(async (self) => {
      await self.receive();
    });
    const b = node.spawn(async (self) => {
      self.link(a);
      await self.receive();
    });
    await flush();
    node.send(a, 'go');
    await node.exited(a);
    await flush();
    expect(node.isAlive(b)).to.equal(true);
  });

  it('trapExit turns exit signals into EXIT messages', async () => {
    const { node } = testNode();
    let msg: unknown;
    let child!: Pid;
    const parent = node.spawn(async (self) => {
      self.trapExit(true);
      child = self.spawnLink(async () => {
        throw new Error('child failed');
      });
      msg = await self.receive(isExit);
    });
    await flush();
    expect(msg).to.be.instanceOf(ExitMessage);
    expect((msg as ExitMessage).from.equals(child)).to.equal(true);
    expect(((msg as ExitMessage).reason as Error).message).to.equal('child failed');
    expect(node.isAlive(parent)).to.equal(false); // its body finished normally
  });

  it("exit(pid, 'kill') cannot be trapped and propagates as 'killed'", async () => {
    const { node } = testNode();
    const victim = node.spawn(async (self) => {
      self.trapExit(true);
      await self.receive((m) => m === 'never');
    });
    let seen: unknown;
    node.spawn(async (self) => {
      self.trapExit(true);
      self.link(victim);
      seen = await self.receive(isExit);
    });
    await flush();
    const exited = node.exited(victim);
    node.exit(victim, 'kill');
    expect(await exited).to.equal('killed');
    await flush();
    expect((seen as ExitMessage).reason).to.equal('killed');
  });

  it('exit(pid, reason) from a process ends a non-trapping target; normal is ignored', async () => {
    const { node } = testNode();
    const target = node.spawn(async (self) => {
      await self.receive();
    });
    node.spawn(async (self) => {
      self.exit(target, 'normal');
      await self.yield();
      self.exit(target, 'custom');
    });
    expect(await node.exited(target)).to.equal('custom');
  });

  it('exit(self, normal) does end the caller', async () => {
    const { node } = testNode();
    const pid = node.spawn(async (self) => {
      self.exit(self.pid, 'normal');
      await self.receive();
    });
    expect(await node.exited(pid)).to.equal('normal');
  });

  it('linking to a dead process delivers noproc', async () => {
    const { node } = testNode();
    const dead = node.spawn(async () => {});
    await node.exited(dead);
    const pid = node.spawn(async (self) => {
      self.link(dead);
      await self.receive();
    });
    expect(await node.exited(pid)).to.equal('noproc');
  });

  it('unlink removes the link both ways', async () => {
    const { node } = testNode();
    const a = node.spawn(async (self) => {
      await self.receive();
      throw new Error('x');
    });
    const b = node.spawn(async (self) => {
      self.link(a);
      self.unlink(a);
      await self.receive();
    });
    await flush();
    expect(node.processInfo(a)!.links).to.deep.equal([]);
    node.send(a, 'go');
    await node.exited(a);
    await flush();
    expect(node.isAlive(b)).to.equal(true);
  });

  it('a long chain of links dies without deep recursion', async () => {
    const { node } = testNode();
    let prev = node.spawn(async (self) => {
      await self.receive();
      throw new Error('head');
    });
    const head = prev;
    const pids: Pid[] = [];
    for (let i = 0; i < 20000; i++) {
      const link = prev;
      prev = node.spawn(
        async (self) => {
          await self.receive();
        },
        { link },
      );
      pids.push(prev);
    }
    await flush();
    node.send(head, 'go');
    await node.exited(pids[pids.length - 1]!);
    expect(pids.every((p) => !node.isAlive(p))).to.equal(true);
  });
});
