import { expect } from 'chai';
import { Node, Pid, TIMEOUT, NoProcError, type Process } from '../../lib/index.js';
import { flush, testNode, thrown } from '../fixtures/helpers.js';

/** Spawns a process that records what it receives, in order. */
function recorder(node: Node, count: number) {
  const got: unknown[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const pid = node.spawn(async (self) => {
    for (let i = 0; i < count; i++) got.push(await self.receive());
    done();
  });
  return { pid, got, finished };
}

describe('Node.spawn(body) and Process.receive(match?, timeoutMs?)', () => {
  it('delivers messages in the order they were sent', async () => {
    const { node } = testNode();
    const r = recorder(node, 3);
    node.send(r.pid, 1);
    node.send(r.pid, 2);
    node.send(r.pid, 3);
    await r.finished;
    expect(r.got).to.deep.equal([1, 2, 3]);
  });

  it('passes local messages by reference', async () => {
    const { node } = testNode();
    const r = recorder(node, 1);
    const msg = { big: [1, 2, 3] };
    node.send(r.pid, msg);
    await r.finished;
    expect(r.got[0]).to.equal(msg);
  });

  it('selective receive takes the first match and keeps the others queued in order', async () => {
    const { node } = testNode();
    const order: unknown[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const pid = node.spawn(async (self) => {
      await self.receive((m) => m === 'go');
      order.push(await self.receive((m) => typeof m === 'number' && m > 1));
      order.push(await self.receive());
      order.push(await self.receive());
      done();
    });
    node.send(pid, 1);
    node.send(pid, 'x');
    node.send(pid, 5);
    node.send(pid, 'go');
    await finished;
    expect(order).to.deep.equal([5, 1, 'x']);
  });

  it('a waiting selective receive is not woken by non-matching messages', async () => {
    const { node } = testNode();
    let got: unknown;
    const pid = node.spawn(async (self) => {
      got = await self.receive((m) => m === 'wanted');
    });
    node.send(pid, 'other');
    await flush();
    expect(got).to.equal(undefined);
    expect(node.processInfo(pid)!.messageQueueLength).to.equal(1);
    node.send(pid, 'wanted');
    await flush();
    expect(got).to.equal('wanted');
  });

  it('resolves TIMEOUT when nothing matching arrives in time (manual clock)', async () => {
    const { node, clock } = testNode({ manual: true });
    let got: unknown = 'pending';
    node.spawn(async (self) => {
      got = await self.receive((m) => m === 'never', 1000);
    });
    await flush();
    clock.advance(999);
    await flush();
    expect(got).to.equal('pending');
    clock.advance(1);
    await flush();
    expect(got).to.equal(TIMEOUT);
  });

  it('a message that arrives before the timeout cancels it', async () => {
    const { node, clock } = testNode({ manual: true });
    const got: unknown[] = [];
    const pid = node.spawn(async (self) => {
      got.push(await self.receive(undefined, 1000));
      got.push(await self.receive(undefined, 1000));
    });
    await flush();
    node.send(pid, 'early');
    await flush();
    clock.advance(999);
    await flush();
    expect(got).to.deep.equal(['early']);
    clock.advance(1);
    await flush();
    expect(got).to.deep.equal(['early', TIMEOUT]);
  });

  it('timeout 0 only looks at what is already in the mailbox', async () => {
    const { node } = testNode();
    const got: unknown[] = [];
    const pid = node.spawn(async (self) => {
      got.push(await self.receive(undefined, 0));
      await self.receive((m) => m === 'go');
      got.push(await self.receive(undefined, 0));
    });
    await flush();
    node.send(pid, 'a');
    node.send(pid, 'go');
    await flush();
    expect(got).to.deep.equal([TIMEOUT, 'a']);
  });

  it('sleep(ms) leaves the mailbox alone', async () => {
    const { node, clock } = testNode({ manual: true });
    const got: unknown[] = [];
    const pid = node.spawn(async (self) => {
      await self.sleep(100);
      got.push(await self.receive());
    });
    await flush();
    node.send(pid, 'kept');
    await flush();
    expect(got).to.deep.equal([]);
    clock.advance(100);
    await flush();
    expect(got).to.deep.equal(['kept']);
  });

  it('refuses a second receive while one is waiting, and bad arguments', async () => {
    const { node } = testNode();
    let err: unknown;
    let badMatch: unknown;
    let badTimeout: unknown;
    node.spawn(async (self) => {
      void self.receive();
      err = thrown(() => self.receive());
    });
    node.spawn(async (self) => {
      badMatch = thrown(() => self.receive('nope' as never));
      badTimeout = thrown(() => self.receive(undefined, -5));
    });
    await flush();
    expect(err).to.be.instanceOf(TypeError);
    expect(badMatch).to.be.instanceOf(TypeError);
    expect(badTimeout).to.be.instanceOf(TypeError);
  });

  it('a body that returns exits normal; one that throws exits with the error and is logged', async () => {
    const { node, logger } = testNode();
    const ok = node.spawn(async () => {});
    const boom = new Error('boom');
    const bad = node.spawn(async () => {
      throw boom;
    });
    const [okReason, badReason] = await Promise.all([node.exited(ok), node.exited(bad)]);
    expect(okReason).to.equal('normal');
    expect(badReason).to.equal(boom);
    expect(logger.has('crashed: Error: boom')).to.equal(true);
    expect(node.isAlive(ok)).to.equal(false);
  });

  it('self.exit(reason) ends the process at once with that reason', async () => {
    const { node } = testNode();
    let after = false;
    const pid = node.spawn(async (self) => {
      self.exit('done_early');
      after = true;
    });
    expect(await node.exited(pid)).to.equal('done_early');
    expect(after).to.equal(false);
  });

  it('a throwing matcher crashes the receiver', async () => {
    const { node } = testNode();
    const pid = node.spawn(async (self) => {
      await self.receive(() => {
        throw new Error('bad pattern');
      });
    });
    await flush();
    const exited = node.exited(pid);
    node.send(pid, 'x');
    const reason = await exited;
    expect((reason as Error).message).to.equal('bad pattern');
  });
});

describe('Node.send(dest, msg)', () => {
  it('never throws for a dead pid', async () => {
    const { node } = testNode();
    const pid = node.spawn(async () => {});
    await node.exited(pid);
    expect(() => node.send(pid, 'hello?')).not.to.throw();
  });

  it('throws NoProcError for a name nobody holds', () => {
    const { node } = testNode();
    const err = thrown(() => node.send('nobody', 1));
    expect(err).to.be.instanceOf(NoProcError);
    expect(err.code).to.equal('ERR_NOPROC');
  });

  it('rejects a destination that is neither a pid nor a name', () => {
    const { node } = testNode();
    expect(thrown(() => node.send(42 as never, 1))).to.be.instanceOf(TypeError);
  });

  it('a dead process sends nothing', async () => {
    const { node } = testNode();
    const r = recorder(node, 1);
    let zombie!: Process;
    const pid = node.spawn(async (self) => {
      zombie = self;
      await self.receive();
    });
    await flush();
    node.exit(pid, 'kill');
    zombie.send(r.pid, 'from beyond');
    node.send(r.pid, 'real');
    await r.finished;
    expect(r.got).to.deep.equal(['real']);
  });
});

describe('Pid', () => {
  it('prints like an Erlang pid and compares by value', () => {
    const { node } = testNode({ name: 'alice' });
    const pid = node.spawn(async () => {});
    expect(pid.toString()).to.match(/^<alice\.\d+\.0>$/);
    expect(JSON.stringify({ pid })).to.equal(`{"pid":"${pid}"}`);
    expect(pid.equals(new Pid('alice', pid.id, 0))).to.equal(true);
    expect(pid.equals(new Pid('bob', pid.id, 0))).to.equal(false);
    expect(Object.keys(pid)).to.not.include('process');
  });

  it('a node name must be plain', () => {
    expect(thrown(() => new Node({ name: 'bad name!' }))).to.be.instanceOf(TypeError);
  });
});
