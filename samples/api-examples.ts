/**
 * Every `@example` in the API reference, as runnable code. `spec/samples`
 * runs each and checks the results the docs promise, so the docs cannot
 * drift from the code.
 *
 * Run it: `node dist/samples/api-examples.js`
 */
import { fileURLToPath } from 'node:url';
import {
  GenEvent,
  GenEventHandler,
  GenFsm,
  GenServer,
  GenStatem,
  ManualClock,
  MissionTable,
  Node,
  Supervisor,
  Sys,
  TIMEOUT,
  WtdError,
  WtdExport,
  keepStateAndData,
  nextState,
  noreply,
  ok,
  reply,
  replyState,
  replyTo,
  type ChildSpec,
  type EventType,
  type From,
  type SupervisorSpec,
} from '../lib/index.js';
import { Development } from './development.js';

type Log = (line: string) => void;

/** Node (lib/runtime/node.ts). */
export async function nodeExample(log: Log): Promise<unknown> {
  const node = new Node({ name: 'alice' });
  const pid = node.spawn(async (self) => {
    const msg = await self.receive();
    log(`got ${String(msg)}`);
  });
  node.send(pid, 'hello'); // prints: got hello
  return node.exited(pid); // => 'normal'
}

/** GenServer (lib/behaviours/gen-server.ts). */
class Stack extends GenServer<string[]> {
  override handleCall(_request: 'pop', _from: From, [top, ...rest]: string[]) {
    return reply(top, rest);
  }
  override handleCast(request: { push: string }, state: string[]) {
    return noreply([request.push, ...state]);
  }
}

export async function stackExample(): Promise<unknown[]> {
  const node = new Node({ name: 'demo' });
  const pid = await GenServer.start(node, new Stack(), ['hello']);
  GenServer.cast(pid, { push: 'world' });
  const results = [await GenServer.call(pid, 'pop'), await GenServer.call(pid, 'pop')]; // => ['world', 'hello']
  await GenServer.stop(pid);
  return results;
}

/** Supervisor (lib/behaviours/supervisor.ts) and ChildSpec (lib/behaviours/child-spec.ts). */
class Counter extends GenServer<number> {}

class App extends Supervisor {
  override init(): SupervisorSpec {
    return {
      strategy: 'one_for_one',
      intensity: 3,
      period: 5,
      children: [{ id: 'counter', start: (parent) => GenServer.startLink(parent, new Counter(), 0) }],
    };
  }
}

export const counterSpec: ChildSpec = {
  id: 'counter',
  start: (parent) => GenServer.startLink(parent, new Counter(), 0),
  restart: 'permanent',
  shutdown: 5000,
};

export async function supervisorExample(): Promise<unknown> {
  const node = new Node({ name: 'demo' });
  const sup = await Supervisor.start(node, new App());
  const children = await Supervisor.whichChildren(sup); // => [{ id: 'counter', pid: <demo.2.0>, type: 'worker' }]
  await GenServer.stop(sup, 'shutdown');
  return children.map((c) => ({ ...c, pid: String(c.pid) }));
}

/** GenEvent (lib/behaviours/gen-event.ts). */
export async function genEventExample(log: Log): Promise<string[]> {
  class Printer extends GenEventHandler<number, string> {
    override handleEvent(event: string, count: number) {
      log(`#${count}: ${event}`);
      return ok(count + 1);
    }
  }
  const node = new Node({ name: 'demo' });
  const room = await GenEvent.start(node);
  await GenEvent.addHandler(room, new Printer(), 1);
  GenEvent.notify(room, 'hello'); // prints: #1: hello
  const handlers = await GenEvent.whichHandlers(room); // => ['Printer']
  await GenEvent.stop(room);
  return handlers;
}

/** GenFsm (lib/behaviours/gen-fsm.ts). */
class Door extends GenFsm<string> {
  override init(code: string) {
    return nextState('locked', code);
  }
  locked(event: unknown, code: string) {
    return event === code
      ? replyState('open', 'open', code, 3000) // relocks after 3 s
      : replyState('wrong code', 'locked', code);
  }
  open(_event: unknown, code: string) {
    return nextState('locked', code); // TIMEOUT or anything else
  }
}

export async function genFsmExample(): Promise<unknown[]> {
  const clock = new ManualClock();
  const node = new Node({ name: 'demo', clock });
  const door = await GenFsm.start(node, new Door(), '1234');
  const answers = [await GenFsm.syncSendEvent(door, '0000'), await GenFsm.syncSendEvent(door, '1234')]; // => ['wrong code', 'open']
  clock.advance(3000); // the state timeout relocks the door
  await new Promise((r) => setImmediate(r));
  answers.push(await GenFsm.syncSendEvent(door, '0000')); // => 'wrong code': locked again
  await GenFsm.stop(door);
  return answers;
}

/** WtdExport (lib/missions/decorators.ts) and MissionTable (lib/missions/mission-table.ts). */
class Maths {
  @WtdExport('maths')
  static add(a: number, b: number) {
    return a + b;
  }
}

export function missionExample(): unknown {
  const table = new MissionTable();
  table.load(Maths);
  table.load(Development);
  return {
    missions: table.missions(), // => ['dev_mission', 'maths']
    add: table.lookupFunction('Maths', 'add', 'maths')!.invoke(2, 3), // => 5
    test: table.lookupFunction('Development', 'test', 'dev_mission')!.mission, // => 'dev_mission'
  };
}

/** WtdError (lib/errors.ts), TIMEOUT (lib/runtime/messages.ts) and ManualClock (lib/runtime/clock.ts). */
export async function timeoutExample(log: Log): Promise<void> {
  const clock = new ManualClock();
  const node = new Node({ name: 'test', clock });
  class Slow extends GenServer {
    override handleCall() {
      return noreply(undefined); // never answers
    }
  }
  const pid = await GenServer.start(node, new Slow());
  const calling = GenServer.call(pid, 'ping', 100);
  clock.advance(100);
  try {
    await calling;
  } catch (err) {
    if (err instanceof WtdError && err.code === 'ERR_CALL_TIMEOUT') log('the server was too slow; try again later');
  }
  const waiting = new Promise<void>((resolve) =>
    node.spawn(async (self) => {
      const msg = await self.receive(undefined, 1000);
      if (msg === TIMEOUT) log('nothing within a second');
      resolve();
    }),
  );
  await new Promise((r) => setImmediate(r));
  clock.advance(1000);
  await waiting;
  node.stop();
}

/** GenStatem (lib/behaviours/gen-statem.ts). */
class Switch extends GenStatem<number> {
  override init() {
    return nextState('off', 0);
  }
  off(type: EventType, content: unknown, flips: number) {
    if (content === 'flip') return nextState('on', flips + 1);
    if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, { state: 'off', flips })]);
    return keepStateAndData();
  }
  on(type: EventType, content: unknown, flips: number) {
    if (content === 'flip') return nextState('off', flips + 1);
    if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, { state: 'on', flips })]);
    return keepStateAndData();
  }
}

export async function genStatemExample(): Promise<unknown> {
  const node = new Node({ name: 'demo' });
  const sw = await GenStatem.start(node, new Switch());
  GenStatem.cast(sw, 'flip');
  const status = await GenStatem.call(sw, 'status'); // => { state: 'on', flips: 1 }
  await GenStatem.stop(sw);
  return status;
}

/** Sys (lib/behaviours/sys.ts). */
export async function sysExample(): Promise<unknown[]> {
  const node = new Node({ name: 'demo' });
  const pid = await GenServer.start(node, new Stack(), ['a']);
  const results = [
    await Sys.getState(pid), // => ['a']
    await Sys.replaceState(pid, (s) => [...(s as string[]), 'b']), // => ['a', 'b']
    (await Sys.getStatus(pid)).module, // => 'Stack'
  ];
  await GenServer.stop(pid);
  return results;
}

export async function main(log: Log = console.log): Promise<void> {
  log(`node: exited ${String(await nodeExample(log))}`);
  log(`stack: ${JSON.stringify(await stackExample())}`);
  log(`supervisor: ${JSON.stringify(await supervisorExample())}`);
  log(`gen_event: ${JSON.stringify(await genEventExample(log))}`);
  log(`gen_fsm: ${JSON.stringify(await genFsmExample())}`);
  log(`missions: ${JSON.stringify(missionExample())}`);
  await timeoutExample(log);
  log(`sys: ${JSON.stringify(await sysExample())}`);
  log(`gen_statem: ${JSON.stringify(await genStatemExample())}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
