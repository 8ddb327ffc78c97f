import { expect } from 'chai';
import {
  BadReturnValueError,
  GenFsm,
  TIMEOUT,
  TimerEvent,
  WtdError,
  nextState,
  replyState,
  stop,
  type From,
  type Ref,
} from '../../lib/index.js';
import { flush, rejection, testNode } from '../fixtures/helpers.js';

interface DoorData {
  code: string;
  tries: number;
  log: unknown[];
}

/** The classic code lock from OTP's gen_fsm docs. */
class Door extends GenFsm<DoorData> {
  timer: Ref | undefined;
  readonly seen: unknown[] = [];
  override init(code: string) {
    return nextState<DoorData>('locked', { code, tries: 0, log: [] });
  }
  locked(event: unknown, data: DoorData, from?: From) {
    data.log.push(['locked', event]);
    if (event === data.code) return replyState('open', 'open', { ...data, tries: 0 }, 100);
    if (event === 'jump') return nextState('nowhere', data);
    if (event === 'bad') return 'garbage' as never;
    if (event === 'tick_in_50') {
      this.timer = this.startTimer(50, 'tick');
      return nextState('locked', data);
    }
    if (event instanceof TimerEvent) {
      this.seen.push(['timer', event.msg, event.ref === this.timer]);
      return nextState('locked', data);
    }
    if (from !== undefined) return replyState('wrong', 'locked', { ...data, tries: data.tries + 1 });
    return nextState('locked', data);
  }
  open(event: unknown, data: DoorData) {
    data.log.push(['open', event]);
    if (event === 'break') return stop('broken', data);
    return nextState('locked', data);
  }
  override handleEvent(event: unknown, stateName: string, data: DoorData) {
    this.seen.push(['all', event, stateName]);
    return nextState(stateName, data);
  }
  override handleSyncEvent(event: unknown, _from: From, stateName: string, data: DoorData) {
    if (event === 'state') return replyState(stateName, stateName, data);
    return replyState(data.tries, stateName, data);
  }
  override handleInfo(msg: unknown, stateName: string, data: DoorData) {
    this.seen.push(['info', msg]);
    return nextState(stateName, data);
  }
}

describe('GenFsm', () => {
  it('dispatches events to the current state method and moves between states', async () => {
    const { node } = testNode();
    const door = await GenFsm.start(node, new Door(), '1234');
    expect(await GenFsm.syncSendEvent(door, '0000')).to.equal('wrong');
    expect(await GenFsm.syncSendAllStateEvent(door, 'tries')).to.equal(1);
    expect(await GenFsm.syncSendEvent(door, '1234')).to.equal('open');
    expect(await GenFsm.syncSendAllStateEvent(door, 'state')).to.equal('open');
    GenFsm.sendEvent(door, 'close');
    expect(await GenFsm.syncSendAllStateEvent(door, 'state')).to.equal('locked');
    expect(node.processInfo(door)!.behaviour).to.equal('gen_fsm');
    expect(node.processInfo(door)!.module).to.equal('Door');
  });

  it('sendAllStateEvent goes to handleEvent, plain messages to handleInfo', async () => {
    const { node } = testNode();
    const fsm = new Door();
    const door = await GenFsm.start(node, fsm, '1');
    GenFsm.sendAllStateEvent(door, 'hello');
    node.send(door, 'raw');
    expect(await GenFsm.syncSendAllStateEvent<string>(door, 'state')).to.equal('locked');
    expect(fsm.seen).to.deep.equal([
      ['all', 'hello', 'locked'],
      ['info', 'raw'],
    ]);
  });

  it('a state timeout delivers TIMEOUT to the state when no event comes', async () => {
    const { node, clock } = testNode({ manual: true });
    class Probe extends Door {
      override open(event: unknown, data: DoorData) {
        expect(event).to.equal(TIMEOUT);
        return super.open(event, data);
      }
    }
    const probe = new Probe();
    const door = await GenFsm.start(node, probe, '1');
    await GenFsm.syncSendEvent(door, '1');
    clock.advance(99);
    await flush();
    clock.advance(1);
    await flush();
    expect(await GenFsm.syncSendAllStateEvent(door, 'state')).to.equal('locked');
    // Any event cancels the state timeout; only the new result can set another.
    await GenFsm.syncSendEvent(door, '1');
    clock.advance(50);
    GenFsm.sendAllStateEvent(door, 'poke');
    await flush();
    clock.advance(1000);
    await flush();
    expect(await GenFsm.syncSendAllStateEvent(door, 'state')).to.equal('open');
  });

  it('startTimer delivers a TimerEvent; cancelTimer stops it', async () => {
    const { node, clock } = testNode({ manual: true });
    const fsm = new Door();
    const door = await GenFsm.start(node, fsm, '1');
    GenFsm.sendEvent(door, 'tick_in_50');
    await flush();
    clock.advance(50);
    await flush();
    await GenFsm.syncSendAllStateEvent(door, 'state');
    expect(fsm.seen).to.deep.equal([['timer', 'tick', true]]);
    GenFsm.sendEvent(door, 'tick_in_50');
    await flush();
    expect(fsm.cancelTimer(fsm.timer!)).to.equal(50);
    clock.advance(100);
    await flush();
    await GenFsm.syncSendAllStateEvent(door, 'state');
    expect(fsm.seen).to.deep.equal([['timer', 'tick', true]]);
    expect(fsm.cancelTimer(fsm.timer!)).to.equal(false);
  });

  it('stop(reason, data) runs terminate with the state name', async () => {
    const { node } = testNode();
    const seen: unknown[] = [];
    class Tracked extends Door {
      override terminate(reason: unknown, stateName: string) {
        seen.push([reason, stateName]);
      }
    }
    const door = await GenFsm.start(node, new Tracked(), '1');
    await GenFsm.syncSendEvent(door, '1');
    const exited = node.exited(door);
    GenFsm.sendEvent(door, 'break');
    expect(await exited).to.equal('broken');
    expect(seen).to.deep.equal([['broken', 'open']]);
  });

  it('moving to a state with no method stops with ERR_UNKNOWN_STATE', async () => {
    const { node } = testNode();
    const door = await GenFsm.start(node, new Door(), '1');
    const exited = node.exited(door);
    GenFsm.sendEvent(door, 'jump');
    const reason = await exited;
    expect(reason).to.be.instanceOf(WtdError);
    expect((reason as WtdError).code).to.equal('ERR_UNKNOWN_STATE');
  });

  it('a bad state result stops with BadReturnValueError', async () => {
    const { node } = testNode();
    const door = await GenFsm.start(node, new Door(), '1');
    const err = await rejection(GenFsm.syncSendEvent(door, 'bad'));
    expect(err.code).to.equal('ERR_SERVER_EXITED');
    expect(err.reason).to.be.instanceOf(BadReturnValueError);
  });

  it('init naming a missing state, or a reserved name, fails to start', async () => {
    const { node } = testNode();
    class Lost extends GenFsm {
      override init(arg: unknown) {
        return nextState(arg as string, null);
      }
    }
    for (const name of ['nowhere', 'terminate', '__proto__', 'constructor']) {
      const err = await rejection(GenFsm.start(node, new Lost(), name));
      expect(err.code).to.equal('ERR_START_FAILED');
      expect(err.reason.code).to.equal('ERR_UNKNOWN_STATE');
    }
  });

  it('syncSendEvent times out with ERR_CALL_TIMEOUT', async () => {
    const { node, clock } = testNode({ manual: true });
    class Silent extends GenFsm {
      override init() {
        return nextState('idle', null);
      }
      idle(_e: unknown, data: unknown) {
        return nextState('idle', data); // never replies
      }
    }
    const fsm = await GenFsm.start(node, new Silent());
    const call = GenFsm.syncSendEvent(fsm, 'hello', 500);
    await flush();
    clock.advance(500);
    expect((await rejection(call)).code).to.equal('ERR_CALL_TIMEOUT');
  });

  it('GenFsm.reply answers a sync event later', async () => {
    const { node } = testNode();
    class Later extends GenFsm {
      override init() {
        return nextState('idle', null);
      }
      idle(_e: unknown, data: unknown, from?: From) {
        setTimeout(() => GenFsm.reply(from!, 'later'), 1);
        return nextState('idle', data);
      }
    }
    const fsm = await GenFsm.start(node, new Later());
    expect(await GenFsm.syncSendEvent(fsm, 'x')).to.equal('later');
  });
});
