/**
 * The README's examples, verbatim but for the import path, so that
 * `spec/samples` proves they work.
 */
import { fileURLToPath } from 'node:url';
import {
  GenServer,
  Node,
  Supervisor,
  WtdBehaviour,
  WtdExport,
  missionTable,
  noreply,
  reply,
  type From,
  type Pid,
  type SupervisorSpec,
} from '../lib/index.js';

class Counter extends GenServer<number> {
  override handleCall(_request: 'get', _from: From, count: number) {
    return reply(count, count); // answer, keep the state
  }
  override handleCast(_request: 'inc', count: number) {
    return noreply(count + 1); // no answer, new state
  }
}

class App extends Supervisor {
  override init(): SupervisorSpec {
    return {
      strategy: 'one_for_one',
      children: [
        { id: 'counter', start: (parent) => GenServer.startLink(parent, new Counter(), 0, { name: 'counter' }) },
      ],
    };
  }
}

@WtdBehaviour('dev_mission') // exposes call/cast of this GenServer
class Development extends GenServer<number> {
  @WtdExport('dev_mission') // exposes Development/test
  static test(...args: unknown[]) {
    return args.map((a) => typeof a);
  }
}

export async function main(log: (line: string) => void = console.log): Promise<void> {
  const node = new Node({ name: 'alice' });
  await Supervisor.start(node, new App());
  const counter = { node, name: 'counter' };
  GenServer.cast(counter, 'inc');
  log(String(await GenServer.call(counter, 'get'))); // 1

  const echo = node.spawn(async (self) => {
    for (;;) {
      const msg = (await self.receive()) as { from: Pid; text: string };
      self.send(msg.from, msg.text);
    }
  });
  await new Promise<void>((resolve) =>
    node.spawn(async (self) => {
      self.send(echo, { from: self.pid, text: 'echo!' });
      log(String(await self.receive()));
      resolve();
    }),
  );

  missionTable(node).load(Development);
  log(JSON.stringify(missionTable(node).describe()));
  node.stop();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
