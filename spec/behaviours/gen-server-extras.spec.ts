import { expect } from 'chai';
import {
  GenEvent,
  GenFsm,
  GenServer,
  Node,
  RequestIds,
  Supervisor,
  Sys,
  TIMEOUT,
  isDown,
  nextState,
  noreply,
  ok,
  reply,
  type DownMessage,
  type From,
  type Pid,
} from '../../lib/index.js';
import { Counter } from '../fixtures/servers.js';
import { MemoryLogger, flush, rejection, testNode } from '../fixtures/helpers.js';

/** Logs what runs, in order; continues from init and from callbacks. */
class Continuing extends GenServer<string[]> {
  override init(arg: unknown) {
    return ok<string[]>(['init'], { continue: arg });
  }
  override handleContinue(arg: unknown, log: string[]) {
    if (arg === 'twice') return noreply([...log, 'continue 1'], { continue: 'again' });
    return noreply([...log, `continue ${String(arg)}`]);
  }
  override handleCall(req: unknown, _from: From, log: string[]) {
    if (req === 'more') return reply('ok', [...log, 'call more'], { continue: 'after call' });
    return reply(log, log);
  }
  override handleCast(req: { after: number; message?: unknown }, log: string[]) {
    return noreply(log, req.message === undefined ? req.after : { timeout: req.after, message: req.message });
  }
  override handleInfo(msg: unknown, log: string[]) {
    return noreply([...log, `info ${msg === TIMEOUT ? 'TIMEOUT' : String(msg)}`]);
  }
}

describe('GenServer handleContinue(arg, state)', () => {
  it('runs right after init, before any message (gen_server_SUITE:continue)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Continuing(), 'twice');
    expect(await GenServer.call(pid, 'log')).to.deep.equal(['init', 'continue 1', 'continue again']);
  });

  it('runs after a callback that returned { continue }, before the next message (gen_server_SUITE:continue)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Continuing(), 'x');
    const [first, second] = await Promise.all([GenServer.call(pid, 'more'), GenServer.call(pid, 'log')]);
    expect(first).to.equal('ok');
    expect(second).to.deep.equal(['init', 'continue x', 'call more', 'continue after call']);
  });

  it('without handleContinue the server stops with an error naming it', async () => {
    class NoContinue extends GenServer<number> {
      override init() {
        return ok(0, { continue: 'go' });
      }
    }
    const { node, logger } = testNode();
    const pid = await GenServer.start(node, new NoContinue());
    await flush();
    expect(node.isAlive(pid)).to.equal(false);
    expect(logger.has('no handleContinue was provided')).to.equal(true);
  });
});

describe('GenServer callback timeouts that carry a message', () => {
  it('{ timeout, message } delivers the message to handleInfo when idle (gen_server_SUITE:timeout)', async () => {
    const { node, clock } = testNode({ manual: true });
    const pid = await GenServer.start(node, new Continuing(), 'x');
    GenServer.cast(pid, { after: 100, message: 'idle' });
    await flush();
    clock.advance(100);
    GenServer.cast(pid, { after: 50 });
    await flush();
    clock.advance(50);
    await flush();
    expect((await GenServer.call<string[]>(pid, 'log')).slice(2)).to.deep.equal(['info idle', 'info TIMEOUT']);
  });
});

describe('GenServer.startMonitor(watcher, impl, arg)', () => {
  it('starts unlinked and monitored (gen_server_SUITE:start_monitor)', async () => {
    const { node } = testNode();
    let down: DownMessage | undefined;
    let links: Pid[] = [];
    const watcher = node.spawn(async (self) => {
      const { pid, ref } = await GenServer.startMonitor(self, new Counter(), 0);
      links = node.processInfo(pid)!.links;
      await GenServer.stop(pid, 'shutdown');
      down = (await self.receive((m) => isDown(m, ref))) as DownMessage;
    });
    await node.exited(watcher);
    expect(links).to.deep.equal([]);
    expect(down!.reason).to.equal('shutdown');
  });

  it('rejects a failed init as start does (gen_server_SUITE:start_monitor)', async () => {
    const { node } = testNode();
    let err: any;
    const watcher = node.spawn(async (self) => {
      err = await rejection(GenServer.startMonitor(self, new Counter(), 'stop'));
    });
    await node.exited(watcher);
    expect(err.code).to.equal('ERR_START_FAILED');
  });
});

describe('GenServer.sendRequest / waitResponse / receiveResponse / checkResponse', () => {
  it('collects a reply later (gen_server_SUITE:send_request)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const req = GenServer.sendRequest(pid, 'inc');
    expect(await GenServer.checkResponse(req)).to.equal('no_reply');
    expect(await GenServer.waitResponse(req, 1000)).to.deep.equal({ reply: 1 });
    expect(await GenServer.checkResponse(req)).to.deep.equal({ reply: 1 });
  });

  it('times out, or abandons on timeout with receiveResponse (gen_server_SUITE:send_request)', async () => {
    const { node, clock } = testNode({ manual: true });
    const pid = await GenServer.start(node, new Counter(), 0);
    const waiting = GenServer.waitResponse(GenServer.sendRequest(pid, 'never'), 100);
    const receiving = GenServer.receiveResponse(GenServer.sendRequest(pid, 'never'), 100);
    await flush();
    clock.advance(100);
    expect(await waiting).to.equal('timeout');
    expect(await receiving).to.equal('timeout');
  });

  it('reports noproc and a server exit as errors (gen_server_SUITE:send_request)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const crash = GenServer.sendRequest(pid, 'crash');
    const res = (await GenServer.waitResponse(crash)) as { error: Error; server: Pid };
    expect(res.error.message).to.equal('asked to crash');
    expect(res.server).to.equal(pid);
    expect(await GenServer.waitResponse(GenServer.sendRequest({ node, name: 'nobody' }, 'x'))).to.deep.equal({
      error: 'noproc',
      server: { node, name: 'nobody' },
    });
  });

  it('answers a collection in the order replies come, with labels (gen_server_SUITE:reqids)', async () => {
    const { node, clock } = testNode({ manual: true });
    const a = await GenServer.start(node, new Counter(), 1);
    const b = await GenServer.start(node, new Counter(), 2);
    const reqs = new RequestIds<string>();
    expect(await GenServer.waitResponse(reqs)).to.equal('no_request');
    reqs.add(GenServer.sendRequest(a, 'never'), 'slow');
    reqs.add(GenServer.sendRequest(b, 'get'), 'b');
    reqs.add(GenServer.sendRequest(a, 'get'), 'a'); // queued behind 'never', still answered: 'never' only defers
    expect(reqs.size).to.equal(3);
    const first = await GenServer.waitResponse(reqs, 100);
    const second = await GenServer.waitResponse(reqs, 100);
    expect([first, second]).to.deep.equal([
      { reply: 2, label: 'b' },
      { reply: 1, label: 'a' },
    ]);
    expect(reqs.toList().map(([, label]) => label)).to.deep.equal(['slow']);
    const last = GenServer.receiveResponse(reqs, 100);
    await flush();
    clock.advance(100);
    expect(await last).to.equal('timeout');
    expect(reqs.size).to.equal(0);
  });
});

describe('GenServer.multiCall(nodes, name, request, timeout)', () => {
  it('answers by node, and names the nodes without the server (gen_server_SUITE:multicall)', async () => {
    const logger = new MemoryLogger();
    const alice = new Node({ name: 'alice', logger });
    const bob = new Node({ name: 'bob', logger });
    const carol = new Node({ name: 'carol', logger });
    await GenServer.start(alice, new Counter(), 1, { name: 'counter' });
    await GenServer.start(bob, new Counter(), 2, { name: 'counter' });
    const { replies, badNodes } = await GenServer.multiCall([alice, bob, carol], 'counter', 'get');
    expect(replies).to.deep.equal([
      ['alice', 1],
      ['bob', 2],
    ]);
    expect(badNodes).to.deep.equal(['carol']);
    alice.stop();
    bob.stop();
  });
});

describe('Sys.getState(ref) / Sys.replaceState(ref, fn) / Sys.getStatus(ref)', () => {
  it('reads and replaces a GenServer state between callbacks (gen_server_SUITE:get_state, replace_state)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 5, { name: 'c' });
    expect(await Sys.getState(pid)).to.equal(5);
    expect(await Sys.replaceState<number>(pid, (n) => n * 2)).to.equal(10);
    expect(await GenServer.call(pid, 'get')).to.equal(10);
    const err = await rejection(
      Sys.replaceState(pid, () => {
        throw new Error('bad replace');
      }),
    );
    expect(err.message).to.equal('bad replace');
    expect(await Sys.getState(pid)).to.equal(10); // unchanged, and still running
    const status = await Sys.getStatus({ node, name: 'c' });
    expect(status.pid).to.equal(pid);
    expect(status.name).to.equal('c');
    expect(status.behaviour).to.equal('gen_server');
    expect(status.module).to.equal('Counter');
    expect(status.status).to.equal('running');
    expect(status.state).to.equal(10);
  });

  it('works for every behaviour (sys_SUITE:get_status)', async () => {
    class Sup extends Supervisor {
      override init() {
        return { children: [] };
      }
    }
    class Fsm extends GenFsm<number> {
      override init() {
        return nextState('idle', 7);
      }
      idle(_e: unknown, n: number) {
        return nextState('idle', n);
      }
    }
    const { node } = testNode();
    const sup = await Supervisor.start(node, new Sup());
    const mgr = await GenEvent.start(node);
    const fsm = await GenFsm.start(node, new Fsm());
    expect((await Sys.getStatus(sup)).behaviour).to.equal('supervisor');
    expect((await Sys.getStatus(mgr)).behaviour).to.equal('gen_event');
    expect(await Sys.getState(fsm)).to.deep.equal({ name: 'idle', data: 7 });
    expect((await Sys.getStatus(fsm)).module).to.equal('Fsm');
  });
});
