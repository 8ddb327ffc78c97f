/**
 * A counter kept alive by a supervisor (`node dist/samples/supervised-counter.js`).
 *
 * A GenServer counts; a Supervisor watches it. We make the counter crash on
 * purpose, the supervisor restarts it (fresh state, same name), and callers
 * carry on. Then we crash it twice in a row, past the restart intensity,
 * and the supervisor gives up, as OTP's would.
 */
import { fileURLToPath } from 'node:url';
import {
  GenServer,
  Node,
  ServerExitError,
  Supervisor,
  formatReason,
  noreply,
  reply,
  type From,
  type Logger,
} from '../lib/index.js';

/** Counts up; crashes when asked to. */
export class Counter extends GenServer<number> {
  override handleCall(request: 'get' | 'crash', _from: From, count: number) {
    if (request === 'crash') throw new Error('the counter tripped over a bug');
    return reply(count, count);
  }
  override handleCast(request: 'inc', count: number) {
    return noreply(request === 'inc' ? count + 1 : count);
  }
}

/** Keeps one counter alive: up to 1 restart in 5 seconds (OTP's default intensity). */
export class CounterSupervisor extends Supervisor {
  override init() {
    return {
      strategy: 'one_for_one' as const,
      children: [
        {
          id: 'counter',
          start: (parent: Parameters<typeof GenServer.startLink>[0]) =>
            GenServer.startLink(parent, new Counter(), 0, { name: 'counter' }),
        },
      ],
    };
  }
}

export async function main(say: (line: string) => void = console.log): Promise<void> {
  // Crash reports, told in one line each instead of a stack trace.
  const logger: Logger = {
    error: (message) => say(`   [log] ${message.split('\n')[0]}`),
  };
  const node = new Node({ name: 'demo', logger });
  const counter = { node, name: 'counter' };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  say('1. Start a supervisor with one child: a counter registered as "counter".');
  const sup = await Supervisor.start(node, new CounterSupervisor());
  const first = node.whereis('counter')!;
  say(`   supervisor ${sup}, counter ${first}`);

  say('2. Count to three with casts, then ask for the total with a call.');
  for (let i = 0; i < 3; i++) GenServer.cast(counter, 'inc');
  say(`   counter says ${await GenServer.call(counter, 'get')}`);

  say('3. Make the counter crash. The caller gets a clear error...');
  try {
    await GenServer.call(counter, 'crash');
  } catch (err) {
    if (!(err instanceof ServerExitError)) throw err;
    say(`   caller caught ${err.code}: ${formatReason(err.reason)}`);
  }
  await sleep(10);
  const second = node.whereis('counter')!;
  say(
    `4. ...and the supervisor has restarted it: ${first} -> ${second}, fresh state ${await GenServer.call(counter, 'get')}.`,
  );

  say('5. Crash it again within 5 seconds: a second restart is more than the intensity allows (1 in 5 s).');
  const supExited = node.exited(sup);
  await GenServer.call(counter, 'crash').catch(() => undefined);
  say(`   the supervisor gave up and exited with reason '${formatReason(await supExited)}'.`);
  say(`   processes still running on the node: ${node.processes().length}`);
  say("Done. In a real tree, this supervisor's own supervisor would now restart it.");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
