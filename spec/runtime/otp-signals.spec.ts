import { expect } from 'chai';
import { DownMessage, ExitMessage, Ref, TIMEOUT, isDown, type Pid, type Process } from '../../lib/index.js';
import { flush, testNode, thrown } from '../fixtures/helpers.js';

describe('Process.demonitor(ref) from the monitored side', () => {
  it('does not cancel the watcher’s monitor (monitor_SUITE:demon_2)', async () => {
    const { node } = testNode();
    let refBox: { ref?: Ref } = {};
    let removed: boolean | undefined;
    const target = node.spawn(async (self) => {
      await self.receive((m) => m === 'demonitor');
      removed = self.demonitor(refBox.ref!);
      await self.receive((m) => m === 'stop');
    });
    let down: unknown;
    node.spawn(async (self) => {
      refBox = { ref: self.monitor(target) };
      self.send(target, 'demonitor');
      down = await self.receive(isDown, 1000);
    });
    await flush();
    expect(removed).to.equal(false);
    node.send(target, 'stop');
    await flush();
    expect(down).to.be.instanceOf(DownMessage);
    expect((down as DownMessage).reason).to.equal('normal');
  });
});

describe('Process.monitor(name)', () => {
  it('reports { name, node } when the process exits (monitor_SUITE:named_down)', async () => {
    const { node } = testNode();
    const target = node.spawn(async (self) => void (await self.receive()), { name: 'db' });
    let down: DownMessage | undefined;
    node.spawn(async (self) => {
      const ref = self.monitor('db');
      down = (await self.receive((m) => isDown(m, ref))) as DownMessage;
    });
    await flush();
    node.send(target, 'go');
    await flush();
    expect(down!.pid).to.deep.equal({ name: 'db', node: 'test' });
    expect(down!.reason).to.equal('normal');
  });

  it('reports noproc with { name, node } for a name nobody holds (monitor_SUITE:mon_error)', async () => {
    const { node } = testNode();
    let down: DownMessage | undefined;
    node.spawn(async (self) => {
      const ref = self.monitor('nobody');
      down = (await self.receive((m) => isDown(m, ref))) as DownMessage;
    });
    await flush();
    expect(down!.pid).to.deep.equal({ name: 'nobody', node: 'test' });
    expect(down!.reason).to.equal('noproc');
  });
});

describe('Process.unlink(pid)', () => {
  it('no ExitMessage arrives once unlink has returned (signal_SUITE:unlink_exit)', async () => {
    const { node } = testNode();
    let got: unknown;
    let trapping: Pid | undefined;
    node.spawn(async (self) => {
      trapping = self.pid;
      self.trapExit(true);
      const child = self.spawnLink(async (c) => void (await c.receive()));
      await self.yield();
      self.exit(child, 'kill'); // the child is dead now; its exit signal is on its way to us
      self.unlink(child);
      for (let i = 0; i < 5; i++) await self.yield();
      got = await self.receive((m) => m instanceof ExitMessage, 0);
      await self.receive();
    });
    await flush(20);
    expect(got).to.equal(TIMEOUT);
    node.exit(trapping!, 'kill');
  });
});

describe('Node.sendAfter(dest, msg, ms) aimed at a process that dies', () => {
  it('is cancelled with the process (timer_bif_SUITE:cleanup)', async () => {
    const { node, clock } = testNode({ manual: true });
    const pid = node.spawn(async (self) => void (await self.receive()));
    const ref = node.sendAfter(pid, 'late', 1000);
    node.send(pid, 'go');
    await node.exited(pid);
    expect(node.cancelTimer(ref)).to.equal(false);
    const again = node.sendAfter(pid, 'later', 1000); // aimed at a dead pid
    expect(node.cancelTimer(again)).to.equal(false);
    clock.advance(1000);
  });
});

describe('Bad arguments are refused as OTP refuses them (badarg, timeout_value)', () => {
  it('processInfo, trapExit, monitor, demonitor, cancelTimer (erlang_SUITE: badarg)', async () => {
    const { node } = testNode();
    const errors: unknown[] = [];
    node.spawn(async (self: Process) => {
      errors.push(thrown(() => self.trapExit('x' as never)));
      errors.push(thrown(() => self.monitor(1 as never)));
      errors.push(thrown(() => self.demonitor('x' as never)));
      errors.push(thrown(() => self.link('x' as never)));
    });
    await flush();
    errors.push(thrown(() => node.processInfo(42 as never)));
    errors.push(thrown(() => node.cancelTimer(1 as never)));
    expect(errors).to.have.length(6);
    for (const err of errors) expect(err).to.be.instanceOf(TypeError);
  });

  it('sendAfter with 4.5 or 2^64 ms (timer_bif_SUITE:bad_arguments)', () => {
    const { node } = testNode();
    const pid: Pid = node.spawn(async (self) => void (await self.receive()));
    for (const ms of [4.5, 2 ** 64, -1, NaN, Infinity, '10']) {
      expect(
        thrown(() => node.sendAfter(pid, 'x', ms as never)),
        String(ms),
      ).to.be.instanceOf(TypeError);
    }
    node.exit(pid, 'kill');
  });

  it('receive timeouts of 3.14 or 2^32 (receive_SUITE:timeout_value)', async () => {
    const { node } = testNode();
    const errors: unknown[] = [];
    let tail: unknown;
    node.spawn(async (self) => {
      errors.push(thrown(() => self.receive(undefined, 3.14)));
      errors.push(thrown(() => self.receive(undefined, 2 ** 32)));
      tail = await self.receive(undefined, 2 ** 32 - 1 - (2 ** 32 - 1)); // 0 is fine
    });
    await flush();
    expect(errors.map((e) => e instanceof TypeError)).to.deep.equal([true, true]);
    expect(tail).to.equal(TIMEOUT);
  });
});
