import { expect } from 'chai';
import {
  GenEvent,
  GenEventError,
  GenEventExit,
  GenEventHandler,
  GenFsm,
  nextState,
  ok,
  type Pid,
  type Ref,
} from '../../lib/index.js';
import { flush, rejection, testNode } from '../fixtures/helpers.js';

class Recorder extends GenEventHandler<unknown> {
  constructor(
    id: string,
    readonly log: unknown[] = [],
    readonly terminateThrows = false,
  ) {
    super(id);
  }
  override init(args: unknown) {
    this.log.push(['init', this.id, args]);
    return ok(args);
  }
  override handleEvent(event: unknown, state: unknown) {
    this.log.push([this.id, event]);
    return ok(state);
  }
  override terminate(): unknown {
    if (this.terminateThrows) throw new Error('terminate exploded');
    return 'done';
  }
}

/** A handler that overrides nothing but its id. */
class Bare extends GenEventHandler {}

/** Adds `handler` supervised by a fresh process and resolves with that process and its inbox. */
async function supervised(mgr: Pid, handler: GenEventHandler<any>, node: ReturnType<typeof testNode>['node']) {
  const inbox: unknown[] = [];
  let owner!: Pid;
  await new Promise<void>((resolve) => {
    owner = node.spawn(async (self) => {
      await GenEvent.addSupHandler(mgr, handler, undefined, self.pid);
      resolve();
      for (;;) inbox.push(await self.receive());
    });
  });
  return { owner, inbox };
}

describe('GenEvent as OTP runs it', () => {
  it('whichHandlers lists the newest handler first (gen_event_SUITE:add_handler)', async () => {
    const { node } = testNode();
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Recorder('first'));
    await GenEvent.addHandler(mgr, new Recorder('second'));
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal(['second', 'first']);
  });

  it('deleting a supervised handler tells its owner: normal (gen_event_SUITE:add_sup_handler)', async () => {
    const { node } = testNode();
    const mgr = await GenEvent.start(node);
    const { inbox } = await supervised(mgr, new Recorder('sup'), node);
    expect(await GenEvent.deleteHandler(mgr, 'sup')).to.equal('done');
    await flush();
    expect(inbox).to.have.length(1);
    expect(inbox[0]).to.be.instanceOf(GenEventExit);
    expect((inbox[0] as GenEventExit).handler).to.equal('sup');
    expect((inbox[0] as GenEventExit).reason).to.equal('normal');
  });

  it('swapHandler with the old handler missing still starts the new one, with error (gen_event_SUITE:swap_handler)', async () => {
    const { node } = testNode();
    const log: unknown[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.swapHandler(mgr, 'missing', 'bye', new Recorder('new', log), 'hello');
    expect(log).to.deep.equal([['init', 'new', { args: 'hello', previous: 'error' }]]);
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal(['new']);
  });

  it('a crash in terminate comes back to deleteHandler’s caller (gen_event_SUITE:delete_handler)', async () => {
    const { node } = testNode();
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Recorder('bad', [], true));
    const err = await rejection(GenEvent.deleteHandler(mgr, 'bad'));
    expect(err).to.be.instanceOf(GenEventError);
    expect(err.code).to.equal('ERR_HANDLER_CRASHED');
    expect(err.cause).to.be.instanceOf(Error);
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
    expect(node.isAlive(mgr)).to.equal(true);
  });
});

describe('Missing callbacks are errors that name them (no silent defaults)', () => {
  it('a handler without handleEvent is removed on its first event, and the report names it (gen_event_SUITE:notify)', async () => {
    const { node, logger } = testNode();
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Bare('bare'));
    await GenEvent.syncNotify(mgr, 'hello');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
    expect(logger.has('no handleEvent was provided')).to.equal(true);
  });

  it('a handler without handleInfo is kept and the message is logged, as OTP’s optional handle_info (gen_event_SUITE:info_notify)', async () => {
    const { node, logger } = testNode();
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Recorder('r'));
    node.send(mgr, 'stray');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal(['r']);
    expect(logger.has("handler 'r' has no handleInfo")).to.equal(true);
  });

  it('a GenFsm without handleEvent or handleInfo stops with an error naming the callback (gen_fsm_SUITE:undef_in_handle_info)', async () => {
    class Plain extends GenFsm<number> {
      override init() {
        return nextState('idle', 0);
      }
      idle(_event: unknown, n: number) {
        return nextState('idle', n);
      }
    }
    const { node } = testNode();
    const a = await GenFsm.start(node, new Plain());
    GenFsm.sendAllStateEvent(a, 'x');
    const reasonA = (await node.exited(a)) as Error;
    expect(reasonA.message).to.include('no handleEvent was provided');
    const b = await GenFsm.start(node, new Plain());
    node.send(b, 'x');
    const reasonB = (await node.exited(b)) as Error;
    expect(reasonB.message).to.include('no handleInfo was provided');
  });
});

describe('GenFsm.cancelTimer(ref)', () => {
  it('removes the event of a timer that already fired (gen_fsm_SUITE:start_timer)', async () => {
    const seen: unknown[] = [];
    let result: unknown;
    class Timed extends GenFsm<number> {
      timer: Ref | undefined;
      override init() {
        return nextState('idle', 0);
      }
      idle(event: unknown, n: number) {
        if (event === 'arm') this.timer = this.startTimer(1000, 'tick');
        else if (event === 'cancel') result = this.cancelTimer(this.timer!);
        else seen.push(event);
        return nextState('idle', n);
      }
    }
    const { node, clock } = testNode({ manual: true });
    const fsm = await GenFsm.start(node, new Timed());
    GenFsm.sendEvent(fsm, 'arm');
    await flush();
    GenFsm.sendEvent(fsm, 'cancel');
    clock.advance(1000); // the timer fires while 'cancel' waits in the mailbox: its event queues behind it
    await flush();
    GenFsm.sendEvent(fsm, 'after');
    await flush();
    expect(result).to.equal(false);
    expect(seen).to.deep.equal(['after']);
  });
});
