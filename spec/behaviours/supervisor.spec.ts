import { expect } from 'chai';
import {
  GenServer,
  StartError,
  Supervisor,
  SupervisorError,
  ignore,
  type ChildSpec,
  type Node,
  type Pid,
  type Process,
  type SupervisorSpec,
} from '../../lib/index.js';
import { Crasher } from '../fixtures/servers.js';
import { flush, rejection, testNode } from '../fixtures/helpers.js';

/** A supervisor whose init returns whatever the spec says. */
class TestSup extends Supervisor {
  constructor(private readonly spec: SupervisorSpec | (() => SupervisorSpec)) {
    super();
  }
  override init() {
    return typeof this.spec === 'function' ? this.spec() : this.spec;
  }
}

function worker(id: string, log: string[], extra: Partial<ChildSpec> = {}): ChildSpec {
  return { id, start: (parent) => GenServer.startLink(parent, new Crasher(log), id), ...extra };
}

async function childPid(sup: Pid, id: string): Promise<Pid> {
  const row = (await Supervisor.whichChildren(sup)).find((c) => c.id === id);
  return row!.pid as Pid;
}

/** Crashes child `id` and waits until the supervisor has dealt with it. */
async function crash(node: Node, sup: Pid, id: string): Promise<void> {
  const pid = await childPid(sup, id);
  const exited = node.exited(pid);
  GenServer.cast(pid, 'crash');
  await exited;
  await Supervisor.countChildren(sup); // the supervisor handled the EXIT before this call
}

describe('Supervisor.start(where, sup, arg)', () => {
  it('starts children in order and stops them in reverse order', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(
      node,
      new TestSup({ children: [worker('a', log), worker('b', log), worker('c', log)] }),
    );
    expect(log).to.deep.equal(['start a', 'start b', 'start c']);
    const rows = await Supervisor.whichChildren(sup);
    expect(rows.map((r) => r.id)).to.deep.equal(['c', 'b', 'a']); // newest first, as OTP lists them
    expect(rows.every((r) => typeof r.pid === 'object')).to.equal(true);
    expect(await Supervisor.countChildren(sup)).to.deep.equal({ specs: 3, active: 3, supervisors: 0, workers: 3 });
    expect(node.processInfo(sup)!.behaviour).to.equal('supervisor');
    expect(node.processInfo(sup)!.module).to.equal('TestSup');
    await GenServer.stop(sup, 'shutdown');
    expect(log.slice(3)).to.deep.equal(['stop shutdown', 'stop shutdown', 'stop shutdown']);
    expect(node.processes()).to.deep.equal([]);
  });

  it('a child that fails to start stops the ones started and fails the supervisor', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const failing: ChildSpec = {
      id: 'bad',
      start: () => Promise.reject(new StartError('ERR_START_FAILED', 'nope', 'nope')),
    };
    const err = await rejection(
      Supervisor.start(node, new TestSup({ children: [worker('a', log), failing, worker('c', log)] })),
    );
    expect(err).to.be.instanceOf(StartError);
    expect(err.code).to.equal('ERR_START_FAILED');
    expect(err.reason).to.deep.equal({ shutdown: { failedToStartChild: 'bad', reason: 'nope' } });
    expect(log).to.deep.equal(['start a', 'stop shutdown']);
    await flush();
    expect(node.processes()).to.deep.equal([]);
  });

  it('a child whose init ignores is kept as a spec with no pid', async () => {
    const { node } = testNode();
    class Ignorer extends GenServer {
      override init() {
        return ignore();
      }
    }
    const sup = await Supervisor.start(
      node,
      new TestSup({ children: [{ id: 'i', start: (p) => GenServer.startLink(p, new Ignorer()) }] }),
    );
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([{ id: 'i', pid: undefined, type: 'worker' }]);
  });

  it('refuses bad flags and bad child specs with stable codes', async () => {
    const { node } = testNode();
    const cases: [SupervisorSpec, string][] = [
      [{ strategy: 'one_for_none' as never, children: [] }, 'ERR_BAD_SUPERVISOR_FLAGS'],
      [{ intensity: -1, children: [] }, 'ERR_BAD_SUPERVISOR_FLAGS'],
      [{ period: 0, children: [] }, 'ERR_BAD_SUPERVISOR_FLAGS'],
      [{ children: [{ id: '', start: async () => undefined as never }] }, 'ERR_BAD_CHILD_SPEC'],
      [{ children: [{ id: 'x', start: 'nope' as never }] }, 'ERR_BAD_CHILD_SPEC'],
      [
        { children: [{ id: 'x', start: async () => undefined as never, restart: 'sometimes' as never }] },
        'ERR_BAD_CHILD_SPEC',
      ],
      [{ children: [{ id: 'x', start: async () => undefined as never, shutdown: -3 }] }, 'ERR_BAD_CHILD_SPEC'],
      [{ children: [{ id: 'x', start: async () => undefined as never, type: 'boss' as never }] }, 'ERR_BAD_CHILD_SPEC'],
      [{ children: [worker('x', []), worker('x', [])] }, 'ERR_BAD_CHILD_SPEC'],
      [{ strategy: 'simple_one_for_one', children: [] }, 'ERR_BAD_CHILD_SPEC'],
    ];
    for (const [spec, code] of cases) {
      const err = await rejection(Supervisor.start(node, new TestSup(spec)));
      expect(err.code, JSON.stringify(spec)).to.equal('ERR_START_FAILED');
      expect(err.reason).to.be.instanceOf(SupervisorError);
      expect(err.reason.code, JSON.stringify(spec)).to.equal(code);
    }
    const notObject = await rejection(Supervisor.start(node, new TestSup(42 as never)));
    expect(notObject.reason.code).to.equal('ERR_BAD_SUPERVISOR_FLAGS');
  });
});

describe('Supervisor restart strategies', () => {
  it('one_for_one restarts only the child that exited', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(
      node,
      new TestSup({ intensity: 5, children: [worker('a', log), worker('b', log)] }),
    );
    const a0 = await childPid(sup, 'a');
    const b0 = await childPid(sup, 'b');
    await crash(node, sup, 'a');
    expect((await childPid(sup, 'a')).equals(a0)).to.equal(false);
    expect((await childPid(sup, 'b')).equals(b0)).to.equal(true);
    expect(log).to.deep.equal(['start a', 'start b', 'stop error', 'start a']);
  });

  it('one_for_all restarts every child: others stopped newest first, all started in order', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(
      node,
      new TestSup({
        strategy: 'one_for_all',
        intensity: 5,
        children: [worker('a', log), worker('b', log), worker('c', log)],
      }),
    );
    log.length = 0;
    await crash(node, sup, 'b');
    expect(log).to.deep.equal(['stop error', 'stop shutdown', 'stop shutdown', 'start a', 'start b', 'start c']);
  });

  it('rest_for_one restarts the child and those started after it', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(
      node,
      new TestSup({
        strategy: 'rest_for_one',
        intensity: 5,
        children: [worker('a', log), worker('b', log), worker('c', log), worker('d', log)],
      }),
    );
    const a0 = await childPid(sup, 'a');
    log.length = 0;
    await crash(node, sup, 'b');
    expect(log).to.deep.equal(['stop error', 'stop shutdown', 'stop shutdown', 'start b', 'start c', 'start d']);
    expect((await childPid(sup, 'a')).equals(a0)).to.equal(true);
  });

  it('transient children are restarted after a crash but not after a normal exit', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(
      node,
      new TestSup({ intensity: 5, children: [worker('t', log, { restart: 'transient' })] }),
    );
    await crash(node, sup, 't');
    expect(log).to.deep.equal(['start t', 'stop error', 'start t']);
    const pid = await childPid(sup, 't');
    await GenServer.call(pid, 'stop_normal');
    await flush();
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([{ id: 't', pid: undefined, type: 'worker' }]);
    expect(log).to.deep.equal(['start t', 'stop error', 'start t', 'stop normal']);
  });

  it('temporary children are never restarted and their spec is dropped', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(node, new TestSup({ children: [worker('tmp', log, { restart: 'temporary' })] }));
    await crash(node, sup, 'tmp');
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([]);
    expect(log).to.deep.equal(['start tmp', 'stop error']);
  });

  it('more than intensity restarts within period shuts the supervisor down (default 1 in 5 s)', async () => {
    const { node, clock, logger } = testNode({ manual: true });
    const log: string[] = [];
    const sup = await Supervisor.start(node, new TestSup({ children: [worker('a', log), worker('b', log)] }));
    const supExited = node.exited(sup);
    await crash(node, sup, 'a'); // restart 1: allowed
    clock.advance(6000); // the first restart leaves the window
    await crash(node, sup, 'a'); // restart 1 again: allowed
    clock.advance(1000);
    const a = await childPid(sup, 'a');
    GenServer.cast(a, 'crash'); // restart 2 within 5 s: too many
    expect(await supExited).to.equal('shutdown');
    expect(logger.has('reached its restart intensity')).to.equal(true);
    await flush();
    expect(node.processes()).to.deep.equal([]);
    expect(log.at(-1)).to.equal('stop shutdown'); // b was shut down cleanly
  });

  it('a restart that fails is retried and counts towards the intensity', async () => {
    const { node } = testNode();
    let starts = 0;
    const flaky: ChildSpec = {
      id: 'flaky',
      start: (parent) => {
        starts++;
        if (starts === 1) return GenServer.startLink(parent, new Crasher([]), 'ok');
        return Promise.reject(new StartError('ERR_START_FAILED', 'down', 'down'));
      },
    };
    const sup = await Supervisor.start(node, new TestSup({ intensity: 3, period: 60, children: [flaky] }));
    const exited = node.exited(sup);
    const pid = await childPid(sup, 'flaky');
    GenServer.cast(pid, 'crash');
    expect(await exited).to.equal('shutdown');
    expect(starts).to.equal(4); // the first start, then 3 failed restarts, then intensity is exceeded
  });
});

describe('Supervisor child shutdown', () => {
  /** A child that traps exits and ignores them, so only kill ends it. */
  function stubborn(id: string, shutdown: ChildSpec['shutdown']): ChildSpec {
    return {
      id,
      shutdown,
      start: async (parent: Process) =>
        parent.spawnLink(async (self) => {
          self.trapExit(true);
          for (;;) await self.receive();
        }),
    };
  }

  it('a numeric shutdown asks, then kills after the timeout', async () => {
    const { node, clock } = testNode({ manual: true });
    const sup = await Supervisor.start(node, new TestSup({ children: [stubborn('s', 1000)] }));
    const pid = await childPid(sup, 's');
    const exited = node.exited(pid);
    const terminating = Supervisor.terminateChild(sup, 's');
    await flush();
    expect(node.isAlive(pid)).to.equal(true);
    clock.advance(1000);
    expect(await exited).to.equal('killed');
    await terminating;
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([{ id: 's', pid: undefined, type: 'worker' }]);
  });

  it('brutal_kill kills at once', async () => {
    const { node } = testNode();
    const sup = await Supervisor.start(node, new TestSup({ children: [stubborn('s', 'brutal_kill')] }));
    const pid = await childPid(sup, 's');
    const exited = node.exited(pid);
    await Supervisor.terminateChild(sup, 's');
    expect(await exited).to.equal('killed');
  });

  it("'infinity' waits for the child however long it takes", async () => {
    const { node, clock } = testNode({ manual: true });
    const sup = await Supervisor.start(node, new TestSup({ children: [stubborn('s', 'infinity')] }));
    const pid = await childPid(sup, 's');
    let done = false;
    const terminating = Supervisor.terminateChild(sup, 's').then(() => (done = true));
    clock.advance(60_000);
    await flush();
    expect(done).to.equal(false);
    node.exit(pid, 'kill');
    await terminating;
    expect(done).to.equal(true);
  });
});

describe('Supervisor.startChild / terminateChild / restartChild / deleteChild', () => {
  it('manages child specs at run time with OTP error codes', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const sup = await Supervisor.start(node, new TestSup({ children: [] }));
    const pid = await Supervisor.startChild(sup, worker('x', log));
    expect(node.isAlive(pid!)).to.equal(true);
    expect((await rejection(Supervisor.startChild(sup, worker('x', log)))).code).to.equal('ERR_ALREADY_STARTED');
    expect((await rejection(Supervisor.restartChild(sup, 'x'))).code).to.equal('ERR_CHILD_RUNNING');
    expect((await rejection(Supervisor.deleteChild(sup, 'x'))).code).to.equal('ERR_CHILD_RUNNING');
    await Supervisor.terminateChild(sup, 'x');
    expect(node.isAlive(pid!)).to.equal(false);
    expect((await rejection(Supervisor.startChild(sup, worker('x', log)))).code).to.equal('ERR_ALREADY_PRESENT');
    const again = await Supervisor.restartChild(sup, 'x');
    expect(node.isAlive(again!)).to.equal(true);
    await Supervisor.terminateChild(sup, 'x');
    await Supervisor.deleteChild(sup, 'x');
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([]);
    const missing = await rejection(Supervisor.terminateChild(sup, 'x'));
    expect(missing).to.be.instanceOf(SupervisorError);
    expect(missing.code).to.equal('ERR_CHILD_NOT_FOUND');
    expect((await rejection(Supervisor.restartChild(sup, 'x'))).code).to.equal('ERR_CHILD_NOT_FOUND');
    expect((await rejection(Supervisor.startChild(sup, { id: 'bad' } as never))).code).to.equal('ERR_BAD_CHILD_SPEC');
    expect(node.isAlive(sup)).to.equal(true); // refusals do not hurt the supervisor
  });

  it('a start function that does not resolve with a pid is a failed start', async () => {
    const { node } = testNode();
    const sup = await Supervisor.start(node, new TestSup({ children: [] }));
    const err = await rejection(Supervisor.startChild(sup, { id: 'odd', start: async () => 'not a pid' as never }));
    expect(err).to.be.instanceOf(StartError);
    expect(err.code).to.equal('ERR_START_FAILED');
    expect(err.reason).to.equal('bad_start_result');
  });

  it('a child started without a link is linked by the supervisor and still restarted', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const unlinked: ChildSpec = { id: 'u', start: (parent) => GenServer.start(parent.node, new Crasher(log), 'u') };
    const sup = await Supervisor.start(node, new TestSup({ intensity: 5, children: [unlinked] }));
    await crash(node, sup, 'u');
    expect(log).to.deep.equal(['start u', 'stop error', 'start u']);
  });

  it('startChild passes on a child StartError', async () => {
    const { node } = testNode();
    const sup = await Supervisor.start(node, new TestSup({ children: [] }));
    class Bad extends GenServer {
      override init(): never {
        throw new Error('bad child');
      }
    }
    const err = await rejection(
      Supervisor.startChild(sup, { id: 'b', start: (p) => GenServer.startLink(p, new Bad()) }),
    );
    expect(err).to.be.instanceOf(StartError);
    expect(err.code).to.equal('ERR_START_FAILED');
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([]);
  });
});

describe('Supervisor simple_one_for_one', () => {
  it('starts children from the template with extra args and terminates them by pid', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const template: ChildSpec = {
      id: 'conn',
      restart: 'temporary',
      start: (parent, name: string) => GenServer.startLink(parent, new Crasher(log), name),
    };
    const sup = await Supervisor.start(node, new TestSup({ strategy: 'simple_one_for_one', children: [template] }));
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([]);
    const p1 = await Supervisor.startChild(sup, ['one']);
    const p2 = await Supervisor.startChild(sup, ['two']);
    expect(await GenServer.call(p1!, 'get')).to.equal('one');
    expect((await Supervisor.countChildren(sup)).active).to.equal(2);
    await Supervisor.terminateChild(sup, p1!);
    expect((await Supervisor.whichChildren(sup)).map((c) => String(c.pid))).to.deep.equal([String(p2)]);
    expect((await rejection(Supervisor.terminateChild(sup, 'conn'))).code).to.equal('ERR_SIMPLE_ONE_FOR_ONE');
    expect((await rejection(Supervisor.restartChild(sup, 'conn'))).code).to.equal('ERR_SIMPLE_ONE_FOR_ONE');
    expect((await rejection(Supervisor.deleteChild(sup, 'conn'))).code).to.equal('ERR_SIMPLE_ONE_FOR_ONE');
    await GenServer.stop(sup, 'shutdown');
    expect(log).to.deep.equal(['start one', 'start two', 'stop shutdown', 'stop shutdown']);
  });

  it('restarts a permanent dynamic child with its own arguments', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const template: ChildSpec = {
      id: 'w',
      start: (parent, name: string) => GenServer.startLink(parent, new Crasher(log), name),
    };
    const sup = await Supervisor.start(
      node,
      new TestSup({ strategy: 'simple_one_for_one', intensity: 5, children: [template] }),
    );
    const p = await Supervisor.startChild(sup, ['dyn']);
    const exited = node.exited(p!);
    GenServer.cast(p!, 'crash');
    await exited;
    const rows = await Supervisor.whichChildren(sup);
    expect(rows.length).to.equal(1);
    expect(await GenServer.call(rows[0]!.pid as Pid, 'get')).to.equal('dyn');
  });
});

describe('Nested supervision trees', () => {
  it('an inner supervisor that gives up is restarted by the outer one', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const inner = () => new TestSup({ intensity: 0, children: [worker('leaf', log)] });
    const outer = await Supervisor.start(
      node,
      new TestSup({
        intensity: 5,
        children: [{ id: 'inner', type: 'supervisor', start: (p) => Supervisor.startLink(p, inner()) }],
      }),
    );
    const innerPid = await childPid(outer, 'inner');
    expect(await Supervisor.countChildren(outer)).to.deep.equal({ specs: 1, active: 1, supervisors: 1, workers: 0 });
    const innerExited = node.exited(innerPid);
    await crash(node, innerPid, 'leaf').catch(() => undefined);
    expect(await innerExited).to.equal('shutdown');
    await flush();
    const newInner = await childPid(outer, 'inner');
    expect(newInner.equals(innerPid)).to.equal(false);
    expect(node.isAlive(await childPid(newInner, 'leaf'))).to.equal(true);
    expect(log).to.deep.equal(['start leaf', 'stop error', 'start leaf']);
  });

  it('stopping the root stops the whole tree', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const root = await Supervisor.start(
      node,
      new TestSup({
        children: [
          worker('w1', log),
          {
            id: 'sub',
            type: 'supervisor',
            start: (p) => Supervisor.startLink(p, new TestSup({ children: [worker('w2', log)] })),
          },
        ],
      }),
    );
    await GenServer.stop(root, 'shutdown');
    await flush();
    expect(node.processes()).to.deep.equal([]);
    expect(log).to.deep.equal(['start w1', 'start w2', 'stop shutdown', 'stop shutdown']);
  });
});
