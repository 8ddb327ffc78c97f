import { expect } from 'chai';
import {
  BadReturnValueError,
  GenStatem,
  Sys,
  WtdError,
  eventTimeout,
  genericTimeout,
  ignore,
  keepState,
  keepStateAndData,
  missionTable,
  nextEvent,
  nextState,
  postpone,
  repeatStateAndData,
  replyTo,
  stateTimeout,
  stop,
  stopAndReply,
  WtdBehaviour,
  type CallbackMode,
  type EventType,
} from '../../lib/index.js';
import { flush, rejection, testNode, thrown } from '../fixtures/helpers.js';

/** Shows an event type the way the assertions spell it. */
function show(type: EventType): string {
  if (GenStatem.isCall(type)) return 'call';
  if (typeof type === 'object') return `timeout:${String(type.timeout)}`;
  return type;
}

/** A code lock (OTP's gen_statem docs), in state_functions mode, recording every event. */
class Lock extends GenStatem<{ code: string; seen: string[] }> {
  override readonly stateEnter: boolean;
  constructor(enter = false) {
    super();
    this.stateEnter = enter;
  }
  override init(code: string) {
    return nextState('locked', { code, seen: [] as string[] });
  }
  locked(type: EventType, content: unknown, data: { code: string; seen: string[] }) {
    data.seen.push(`locked ${show(type)} ${String(content)}`);
    if (type === 'enter') return keepStateAndData();
    if (GenStatem.isCall(type)) {
      if (content === data.code)
        return nextState('open', data, [replyTo(type.call, 'open'), stateTimeout(1000, 'lock')]);
      if (content === 'state') return keepStateAndData([replyTo(type.call, 'locked')]);
      if (content === 'stop') return stopAndReply('normal', 'bye', data);
      return keepStateAndData([replyTo(type.call, 'wrong')]);
    }
    if (content === 'wait') return keepStateAndData([postpone()]);
    return keepStateAndData();
  }
  open(type: EventType, content: unknown, data: { code: string; seen: string[] }) {
    data.seen.push(`open ${show(type)} ${String(content)}`);
    if (type === 'enter') return keepStateAndData();
    if (type === 'state_timeout') return nextState('locked', data);
    if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, 'open')]);
    if (content === 'wait') return nextState('locked', data);
    return keepStateAndData();
  }
}

describe('GenStatem.start(where, machine, arg) / call / cast / stop', () => {
  it('runs state functions, replies with actions and stops (gen_statem_SUITE:start1, stop1)', async () => {
    const { node } = testNode();
    const lock = await GenStatem.start(node, new Lock(), '1234');
    expect(await GenStatem.call(lock, '0000')).to.equal('wrong');
    expect(await GenStatem.call(lock, '1234')).to.equal('open');
    expect(await GenStatem.call(lock, 'state')).to.equal('open');
    expect(node.processInfo(lock)!.behaviour).to.equal('gen_statem');
    expect(await Sys.getState(lock)).to.deep.include({ name: 'open' });
    const exited = node.exited(lock);
    await GenStatem.stop(lock);
    expect(await exited).to.equal('normal');
  });

  it('stopAndReply answers the call, then stops (gen_statem_SUITE:stop_and_reply)', async () => {
    const { node } = testNode();
    const lock = await GenStatem.start(node, new Lock(), '1234');
    const exited = node.exited(lock);
    expect(await GenStatem.call(lock, 'stop')).to.equal('bye');
    expect(await exited).to.equal('normal');
  });

  it('init may ignore or stop (gen_statem_SUITE:start7, start8)', async () => {
    class Picky extends GenStatem {
      override init(arg: string) {
        return arg === 'ignore' ? ignore() : stop('no_thanks');
      }
    }
    const { node } = testNode();
    expect((await rejection(GenStatem.start(node, new Picky(), 'ignore'))).code).to.equal('ERR_START_IGNORED');
    const err = await rejection(GenStatem.start(node, new Picky(), 'stop'));
    expect(err.code).to.equal('ERR_START_FAILED');
    expect(err.reason).to.equal('no_thanks');
  });

  it('a bad return or an unknown state stops the machine with a coded error (gen_statem_SUITE:bad_return_value)', async () => {
    class Bad extends GenStatem {
      override init() {
        return nextState('a', 0);
      }
      a(_t: EventType, content: unknown) {
        return content === 'jump' ? nextState('toString', 0) : (42 as never);
      }
    }
    const { node } = testNode();
    const a = await GenStatem.start(node, new Bad());
    GenStatem.cast(a, 'x');
    expect(await node.exited(a)).to.be.instanceOf(BadReturnValueError);
    const b = await GenStatem.start(node, new Bad());
    GenStatem.cast(b, 'jump');
    const reason = (await node.exited(b)) as WtdError;
    expect(reason.code).to.equal('ERR_UNKNOWN_STATE');
  });
});

describe('GenStatem callbackMode handle_event_function', () => {
  it('sends every event to handleEvent with any value as state (gen_statem_SUITE:handle_event_function)', async () => {
    class Counter extends GenStatem<number, { level: number }> {
      override readonly callbackMode: CallbackMode = 'handle_event_function';
      override init() {
        return nextState({ level: 0 }, 0);
      }
      override handleEvent(type: EventType, content: unknown, state: { level: number }, n: number) {
        if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, { state, n, content })]);
        if (type === 'info') return nextState({ level: state.level + 1 }, n + 1);
        return keepState(n + 10);
      }
    }
    const { node } = testNode();
    const pid = await GenStatem.start(node, new Counter());
    node.send(pid, 'plain message');
    GenStatem.cast(pid, 'cast');
    expect(await GenStatem.call(pid, 'get')).to.deep.equal({ state: { level: 1 }, n: 11, content: 'get' });
  });
});

describe('GenStatem state enter calls', () => {
  it('run after init and on each state change, with the old state (gen_statem_SUITE:state_enter)', async () => {
    const { node } = testNode();
    const machine = new Lock(true);
    const lock = await GenStatem.start(node, machine, '1');
    await GenStatem.call(lock, '1');
    await GenStatem.call(lock, 'state');
    const { data } = (await Sys.getState(lock)) as { data: { seen: string[] } };
    expect(data.seen).to.deep.equal(['locked enter locked', 'locked call 1', 'open enter locked', 'open call state']);
  });

  it('repeat_state runs the enter call again; an enter call cannot change state (gen_statem_SUITE:state_enter)', async () => {
    class Repeater extends GenStatem<string[]> {
      override readonly stateEnter = true;
      override init() {
        return nextState('s', [] as string[]);
      }
      s(type: EventType, content: unknown, log: string[]) {
        log.push(show(type));
        if (type === 'enter') return keepStateAndData();
        if (content === 'again') return repeatStateAndData();
        return nextState('t', log);
      }
      t(type: EventType, _content: unknown, log: string[]) {
        return type === 'enter' ? nextState('elsewhere', log) : keepStateAndData();
      }
    }
    const { node } = testNode();
    const pid = await GenStatem.start(node, new Repeater());
    GenStatem.cast(pid, 'again');
    expect(((await Sys.getState(pid)) as { data: string[] }).data).to.deep.equal(['enter', 'cast', 'enter']);
    GenStatem.cast(pid, 'to t');
    expect(await node.exited(pid)).to.be.instanceOf(BadReturnValueError);
  });
});

describe('GenStatem postpone and inserted events', () => {
  it('a postponed event is handled again after the state changes (gen_statem_SUITE:postpone)', async () => {
    const { node } = testNode();
    const lock = await GenStatem.start(node, new Lock(), '1');
    GenStatem.cast(lock, 'wait'); // postponed in 'locked'
    GenStatem.cast(lock, 'other');
    await GenStatem.call(lock, '1'); // -> open: 'wait' is retried there, and sends us back to 'locked'
    const { name, data } = (await Sys.getState(lock)) as { name: string; data: { seen: string[] } };
    expect(name).to.equal('locked');
    expect(data.seen).to.deep.equal(['locked cast wait', 'locked cast other', 'locked call 1', 'open cast wait']);
  });

  it('inserted events come before queued messages, in order (gen_statem_SUITE:next_events)', async () => {
    class Inserter extends GenStatem<string[]> {
      override readonly callbackMode: CallbackMode = 'handle_event_function';
      override init() {
        return nextState('s', [] as string[], [nextEvent('internal', 'from init')]);
      }
      override handleEvent(type: EventType, content: unknown, _s: string, log: string[]) {
        log.push(`${show(type)} ${String(content)}`);
        if (content === 'go') return keepState(log, [nextEvent('internal', 'one'), nextEvent('cast', 'two')]);
        return keepStateAndData();
      }
    }
    const { node } = testNode();
    const pid = await GenStatem.start(node, new Inserter());
    GenStatem.cast(pid, 'go');
    GenStatem.cast(pid, 'later');
    await flush();
    expect(((await Sys.getState(pid)) as { data: string[] }).data).to.deep.equal([
      'internal from init',
      'cast go',
      'internal one',
      'cast two',
      'cast later',
    ]);
  });
});

describe('GenStatem timeouts', () => {
  class Timers extends GenStatem<string[]> {
    override readonly callbackMode: CallbackMode = 'handle_event_function';
    override init() {
      return nextState('a', [] as string[]);
    }
    override handleEvent(type: EventType, content: unknown, state: string, log: string[]) {
      if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, log)]);
      log.push(`${state} ${show(type)} ${String(content)}`);
      switch (content) {
        case 'event':
          return keepStateAndData([eventTimeout(100, 'idle')]);
        case 'state':
          return keepStateAndData([stateTimeout(100, 'st')]);
        case 'move':
          return nextState('b', log);
        case 'generic':
          return keepStateAndData([genericTimeout('g', 100, 'gen')]);
        case 'cancel':
          return keepStateAndData([genericTimeout('g', 'cancel')]);
        default:
          return keepStateAndData();
      }
    }
  }

  async function started() {
    const t = testNode({ manual: true });
    const pid = await GenStatem.start(t.node, new Timers());
    const tick = async (ms: number) => {
      await flush();
      t.clock.advance(ms);
      await flush();
    };
    const log = () => GenStatem.call<string[]>(pid, 'log');
    return { pid, tick, log };
  }

  it('an event timeout fires when idle and any event cancels it (gen_statem_SUITE:event_timeout)', async () => {
    const { pid, tick, log } = await started();
    GenStatem.cast(pid, 'event');
    await tick(100);
    GenStatem.cast(pid, 'event');
    await tick(50);
    GenStatem.cast(pid, 'poke'); // cancels it
    await tick(100);
    expect(await log()).to.deep.equal(['a cast event', 'a timeout idle', 'a cast event', 'a cast poke']);
  });

  it('a state timeout survives other events and is cancelled by a state change (gen_statem_SUITE:state_timeout)', async () => {
    const { pid, tick, log } = await started();
    GenStatem.cast(pid, 'state');
    await tick(50);
    GenStatem.cast(pid, 'poke');
    await tick(50);
    GenStatem.cast(pid, 'state');
    GenStatem.cast(pid, 'move');
    await tick(200);
    expect(await log()).to.deep.equal([
      'a cast state',
      'a cast poke',
      'a state_timeout st',
      'a cast state',
      'a cast move',
    ]);
  });

  it('a generic timeout survives state changes until it fires or is cancelled (gen_statem_SUITE:generic_timers)', async () => {
    const { pid, tick, log } = await started();
    GenStatem.cast(pid, 'generic');
    GenStatem.cast(pid, 'move');
    await tick(100);
    GenStatem.cast(pid, 'generic');
    GenStatem.cast(pid, 'cancel');
    await tick(200);
    expect(await log()).to.deep.equal([
      'a cast generic',
      'a cast move',
      'b timeout:g gen',
      'b cast generic',
      'b cast cancel',
    ]);
  });

  it('refuses bad timeout values as OTP does (gen_statem_SUITE:bad_timeout)', () => {
    for (const bad of [-1, 4.5, 2 ** 32, 'soon']) {
      expect(thrown(() => stateTimeout(bad as never, 'x'))).to.be.instanceOf(TypeError);
    }
  });
});

describe('@WtdBehaviour on a GenStatem', () => {
  it('is exposed with the gen_statem operations call and cast', () => {
    @WtdBehaviour('lights')
    class Remote extends GenStatem {
      override init() {
        return nextState('idle', 0);
      }
    }
    const { node } = testNode();
    const table = missionTable(node);
    table.load(Remote);
    const exposed = table.behaviourOf(new Remote(), 'lights')!;
    expect(exposed.kind).to.equal('gen_statem');
    expect(exposed.ops).to.deep.equal(['call', 'cast']);
  });
});
