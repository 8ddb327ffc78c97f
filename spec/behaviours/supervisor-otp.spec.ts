import { expect } from 'chai';
import {
  GenServer,
  StartError,
  Supervisor,
  SupervisorError,
  ignore,
  type ChildSpec,
  type Pid,
  type Process,
  type StartedChild,
  type SupervisorSpec,
} from '../../lib/index.js';
import { Crasher } from '../fixtures/servers.js';
import { flush, rejection, testNode, thrown } from '../fixtures/helpers.js';

class TestSup extends Supervisor {
  constructor(private readonly spec: SupervisorSpec) {
    super();
  }
  override init() {
    return this.spec;
  }
}

class Ignorer extends GenServer {
  override init() {
    return ignore();
  }
}

/** A child that traps exits and never ends unless killed. */
function stubborn(parent: Process): Promise<Pid> {
  return Promise.resolve(
    parent.spawnLink(async (self) => {
      self.trapExit(true);
      for (;;) await self.receive();
    }),
  );
}

function crasher(id: string, log: string[], extra: Partial<ChildSpec> = {}): ChildSpec {
  return { id, start: (p) => GenServer.startLink(p, new Crasher(log), id), ...extra };
}

describe('Supervisor simple_one_for_one shutdown (as OTP stops dynamic children)', () => {
  it('stops every trapping child at once and exits shutdown (supervisor_SUITE:sup_stop_infinity)', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const template: ChildSpec = { id: 'w', start: (p, name: string) => GenServer.startLink(p, new Crasher(log), name) };
    const sup = await Supervisor.start(node, new TestSup({ strategy: 'simple_one_for_one', children: [template] }));
    const kids = [
      (await Supervisor.startChild(sup, ['a']))!,
      (await Supervisor.startChild(sup, ['b']))!,
      (await Supervisor.startChild(sup, ['c']))!,
    ];
    const supExit = node.exited(sup);
    await GenServer.stop(sup, 'shutdown');
    expect(await supExit).to.equal('shutdown');
    expect(kids.map((k) => node.isAlive(k))).to.deep.equal([false, false, false]);
    expect(log.filter((l) => l === 'stop shutdown')).to.have.length(3);
  });

  it('kills children that outlive their shutdown time, all on one deadline (supervisor_SUITE:sup_stop_timeout)', async () => {
    const { node, clock } = testNode({ manual: true });
    const template: ChildSpec = { id: 'w', shutdown: 1000, start: stubborn };
    const sup = await Supervisor.start(node, new TestSup({ strategy: 'simple_one_for_one', children: [template] }));
    const kids = [(await Supervisor.startChild(sup, []))!, (await Supervisor.startChild(sup, []))!];
    const exits = kids.map((k) => node.exited(k));
    const stopping = GenServer.stop(sup, 'shutdown');
    await flush();
    expect(kids.map((k) => node.isAlive(k))).to.deep.equal([true, true]);
    clock.advance(1000); // one shutdown time for both: they are waited for together
    expect(await Promise.all(exits)).to.deep.equal(['killed', 'killed']);
    await stopping;
    expect(node.isAlive(sup)).to.equal(false);
  });

  it('reports a dynamic child that exits with another reason than shutdown (supervisor_SUITE:sup_stop_infinity)', async () => {
    const { node, logger } = testNode();
    const odd: ChildSpec = {
      id: 'odd',
      start: async (parent) =>
        parent.spawnLink(async (self) => {
          self.trapExit(true);
          await self.receive();
          self.exit('my_own_reason');
        }),
    };
    const sup = await Supervisor.start(node, new TestSup({ strategy: 'simple_one_for_one', children: [odd] }));
    await Supervisor.startChild(sup, []);
    await Supervisor.startChild(sup, []);
    const supExit = node.exited(sup);
    await GenServer.stop(sup, 'shutdown');
    expect(await supExit).to.equal('shutdown');
    expect(logger.lines.filter((l) => l.includes('shut down with reason my_own_reason'))).to.have.length(2);
  });
});

describe('Supervisor.whichChildren(sup) / countChildren(sup) as OTP answers them', () => {
  it('does not keep a temporary child whose start ignored (supervisor_SUITE:sup_start_ignore_temporary_child)', async () => {
    const { node } = testNode();
    const temp: ChildSpec = { id: 't', restart: 'temporary', start: (p) => GenServer.startLink(p, new Ignorer()) };
    const perm: ChildSpec = { id: 'p', start: (p) => GenServer.startLink(p, new Ignorer()) };
    const sup = await Supervisor.start(node, new TestSup({ children: [temp, perm] }));
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([{ id: 'p', pid: undefined, type: 'worker' }]);
    expect(await Supervisor.startChild(sup, { ...temp, id: 't2' })).to.equal(undefined);
    expect((await Supervisor.countChildren(sup)).specs).to.equal(1);
  });

  it('counts the template once and gives dynamic children no id (supervisor_SUITE:count_children)', async () => {
    const { node } = testNode();
    const template: ChildSpec = { id: 'w', start: (p, n: string) => GenServer.startLink(p, new Crasher(), n) };
    const sup = await Supervisor.start(node, new TestSup({ strategy: 'simple_one_for_one', children: [template] }));
    const a = await Supervisor.startChild(sup, ['a']);
    const b = await Supervisor.startChild(sup, ['b']);
    expect(await Supervisor.countChildren(sup)).to.deep.equal({ specs: 1, active: 2, supervisors: 0, workers: 2 });
    const rows = await Supervisor.whichChildren(sup);
    expect(rows.map((r) => r.id)).to.deep.equal([null, null]);
    expect(rows.map((r) => String(r.pid))).to.deep.equal([String(b), String(a)]);
  });
});

describe('Supervisor.terminateChild(sup, id) with pids, as OTP', () => {
  it('a pid that already exited is ok under simple_one_for_one (supervisor_SUITE:child_adm_simple)', async () => {
    const { node } = testNode();
    const template: ChildSpec = { id: 'w', restart: 'temporary', shutdown: 'brutal_kill', start: stubborn };
    const sup = await Supervisor.start(node, new TestSup({ strategy: 'simple_one_for_one', children: [template] }));
    const child = (await Supervisor.startChild(sup, []))!;
    await Supervisor.terminateChild(sup, child);
    expect(node.isAlive(child)).to.equal(false);
    await Supervisor.terminateChild(sup, child); // gone already: still ok
    const stranger = node.spawn(async (self) => void (await self.receive()));
    const err = await rejection(Supervisor.terminateChild(sup, stranger));
    expect(err).to.be.instanceOf(SupervisorError);
    expect(err.code).to.equal('ERR_CHILD_NOT_FOUND');
  });

  it('a pid is not found under the other strategies (supervisor_SUITE:child_adm)', async () => {
    const { node } = testNode();
    const sup = await Supervisor.start(node, new TestSup({ children: [crasher('x', [])] }));
    const [row] = await Supervisor.whichChildren(sup);
    const err = await rejection(Supervisor.terminateChild(sup, row!.pid as Pid));
    expect(err).to.be.instanceOf(SupervisorError);
    expect(err.code).to.equal('ERR_CHILD_NOT_FOUND');
    expect(node.isAlive(row!.pid as Pid)).to.equal(true);
  });
});

describe('Supervisor: a child whose restart keeps failing', () => {
  /** A child that starts once, then fails to start when `fail` is called. */
  function flaky(): { spec: ChildSpec; starts: () => number; fail: () => void } {
    let starts = 0;
    let fail: () => void = () => {};
    const spec: ChildSpec = {
      id: 'f',
      start: (parent) => {
        starts++;
        if (starts === 1) return GenServer.startLink(parent, new Crasher(), 'f');
        if (starts === 2) {
          return new Promise<Pid>((_resolve, reject) => {
            fail = () => reject(new StartError('ERR_START_FAILED', 'no_luck', 'no luck'));
          });
        }
        return Promise.reject(new StartError('ERR_START_FAILED', 'no_luck', 'no luck'));
      },
    };
    return { spec, starts: () => starts, fail: () => fail() };
  }

  async function crashAndFail(node: ReturnType<typeof testNode>['node'], sup: Pid, f: ReturnType<typeof flaky>) {
    const [row] = await Supervisor.whichChildren(sup);
    const exited = node.exited(row!.pid as Pid);
    GenServer.cast(row!.pid as Pid, 'crash');
    await exited;
    await flush();
    expect(f.starts()).to.equal(2);
  }

  it('is already present to startChild (supervisor_SUITE:try_again_restart)', async () => {
    const { node } = testNode();
    const f = flaky();
    const sup = await Supervisor.start(node, new TestSup({ intensity: 10, children: [f.spec] }));
    await crashAndFail(node, sup, f);
    const starting = rejection(Supervisor.startChild(sup, f.spec)); // queued while the restart is under way
    f.fail();
    const err = await starting;
    expect(err).to.be.instanceOf(SupervisorError);
    expect(err.code).to.equal('ERR_ALREADY_PRESENT');
    await GenServer.stop(sup, 'shutdown');
  });

  it('stays stopped once terminated: no queued retry restarts it (supervisor_SUITE:try_again_restart)', async () => {
    const { node } = testNode();
    const f = flaky();
    const sup = await Supervisor.start(node, new TestSup({ intensity: 10, children: [f.spec] }));
    await crashAndFail(node, sup, f);
    const terminating = Supervisor.terminateChild(sup, 'f');
    f.fail(); // the retry is queued behind terminateChild
    await terminating;
    await flush();
    expect(await Supervisor.whichChildren(sup)).to.deep.equal([{ id: 'f', pid: undefined, type: 'worker' }]);
    expect(f.starts()).to.equal(2);
  });
});

describe('Supervisor.getChildSpec(sup, id) / Supervisor.checkChildSpecs(specs)', () => {
  it('returns the spec with its defaults filled in (supervisor_SUITE:child_specs)', async () => {
    const { node } = testNode();
    const spec = crasher('x', []);
    const sup = await Supervisor.start(node, new TestSup({ children: [spec] }));
    const got = await Supervisor.getChildSpec(sup, 'x');
    expect({ ...got, start: undefined }).to.deep.equal({
      id: 'x',
      start: undefined,
      restart: 'permanent',
      shutdown: 5000,
      type: 'worker',
      significant: false,
    });
    expect(got.start).to.equal(spec.start);
    expect((await rejection(Supervisor.getChildSpec(sup, 'y'))).code).to.equal('ERR_CHILD_NOT_FOUND');
  });

  it('checks specs without starting anything (supervisor_SUITE:child_specs)', () => {
    expect(Supervisor.checkChildSpecs([crasher('a', []), crasher('b', [])])).to.equal(undefined);
    const bad = [
      [{ id: 'a' } as ChildSpec],
      [crasher('a', []), crasher('a', [])],
      [{ ...crasher('a', []), shutdown: -1 }],
    ];
    for (const specs of bad) {
      const err = thrown(() => Supervisor.checkChildSpecs(specs));
      expect(err).to.be.instanceOf(SupervisorError);
      expect(err.code).to.equal('ERR_BAD_CHILD_SPEC');
    }
  });

  it('refuses a period of Infinity (supervisor_SUITE:sup_flags)', async () => {
    const { node } = testNode();
    const err = await rejection(Supervisor.start(node, new TestSup({ period: Infinity, children: [] })));
    expect(err).to.be.instanceOf(StartError);
    expect(err.reason).to.be.instanceOf(SupervisorError);
    expect(err.reason.code).to.equal('ERR_BAD_SUPERVISOR_FLAGS');
  });
});

describe('Supervisor.startChild(sup, spec) with { pid, info }', () => {
  it('hands back what start resolved with (supervisor_SUITE:extra_return)', async () => {
    const { node } = testNode();
    const spec: ChildSpec = {
      id: 'e',
      start: async (p) => ({ pid: await GenServer.startLink(p, new Crasher(), 'e'), info: { extra: 1 } }),
    };
    const sup = await Supervisor.start(node, new TestSup({ children: [] }));
    const started = (await Supervisor.startChild<StartedChild>(sup, spec))!;
    expect(started.info).to.deep.equal({ extra: 1 });
    expect(await GenServer.call(started.pid, 'get')).to.equal('e');
    await Supervisor.terminateChild(sup, 'e');
    const again = (await Supervisor.restartChild<StartedChild>(sup, 'e'))!;
    expect(again.info).to.deep.equal({ extra: 1 });
    expect(node.isAlive(again.pid)).to.equal(true);
  });
});

describe('Supervisor autoShutdown with significant children', () => {
  async function endChild(node: ReturnType<typeof testNode>['node'], sup: Pid, id: string): Promise<void> {
    const pid = (await Supervisor.whichChildren(sup)).find((c) => c.id === id)!.pid as Pid;
    const exited = node.exited(pid);
    await GenServer.call(pid, 'stop_normal');
    await exited;
  }

  it("'any_significant' stops when one significant child ends by itself (supervisor_SUITE:significant_temporary)", async () => {
    const { node } = testNode();
    const log: string[] = [];
    const spec: SupervisorSpec = {
      autoShutdown: 'any_significant',
      children: [crasher('a', log, { restart: 'temporary', significant: true }), crasher('b', log)],
    };
    const sup = await Supervisor.start(node, new TestSup(spec));
    const supExit = node.exited(sup);
    await endChild(node, sup, 'a');
    expect(await supExit).to.equal('shutdown');
    expect(log).to.include('stop shutdown'); // b was stopped
  });

  it("'all_significant' waits for the last one (supervisor_SUITE:significant_transient)", async () => {
    const { node } = testNode();
    const spec: SupervisorSpec = {
      autoShutdown: 'all_significant',
      children: [
        crasher('a', [], { restart: 'transient', significant: true }),
        crasher('b', [], { restart: 'transient', significant: true }),
      ],
    };
    const sup = await Supervisor.start(node, new TestSup(spec));
    const supExit = node.exited(sup);
    await endChild(node, sup, 'a');
    expect(node.isAlive(sup)).to.equal(true);
    await endChild(node, sup, 'b');
    expect(await supExit).to.equal('shutdown');
  });

  it('terminateChild of a significant child does not stop the supervisor (supervisor_SUITE:significant_temporary)', async () => {
    const { node } = testNode();
    const spec: SupervisorSpec = {
      autoShutdown: 'any_significant',
      children: [crasher('a', [], { restart: 'transient', significant: true })],
    };
    const sup = await Supervisor.start(node, new TestSup(spec));
    await Supervisor.terminateChild(sup, 'a');
    expect(node.isAlive(sup)).to.equal(true);
  });

  it('refuses significant permanent children, and significant children without autoShutdown (supervisor_SUITE:significant_bad)', async () => {
    const { node } = testNode();
    const bad: SupervisorSpec[] = [
      { autoShutdown: 'any_significant', children: [crasher('a', [], { significant: true })] },
      { children: [crasher('a', [], { restart: 'temporary', significant: true })] },
      { autoShutdown: 'sometimes' as never, children: [] },
    ];
    for (const spec of bad) {
      const err = await rejection(Supervisor.start(node, new TestSup(spec)));
      expect(err.reason).to.be.instanceOf(SupervisorError);
      expect(err.reason.code).to.be.oneOf(['ERR_BAD_CHILD_SPEC', 'ERR_BAD_SUPERVISOR_FLAGS']);
    }
  });
});
