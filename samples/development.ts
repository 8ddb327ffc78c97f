/**
 * The seed project's example module, in TypeScript: a GenServer whose
 * behaviour is exposed under `dev_mission`, plus an exported `test`
 * function that, like the seed's test/0 and test/N, answers with no
 * arguments and otherwise reports the type of each argument it got.
 *
 * Run it: `node dist/samples/development.js`
 */
import { fileURLToPath } from 'node:url';
import { GenServer, Node, WtdBehaviour, WtdExport, missionTable, reply, type From } from '../lib/index.js';

@WtdBehaviour('dev_mission')
export class Development extends GenServer<number> {
  /** With no arguments: a greeting. With arguments: the type of each one. */
  @WtdExport('dev_mission')
  static test(...args: unknown[]): string | string[] {
    if (args.length === 0) return 'test/0 called';
    return args.map(describeType);
  }

  override handleCall(request: unknown, _from: From, calls: number) {
    return reply({ request, calls: calls + 1 }, calls + 1);
  }
}

/** Names a value's type the way a beginner would. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  if (value instanceof Map) return 'map';
  if (value instanceof Set) return 'set';
  return typeof value;
}

export async function main(log: (line: string) => void = console.log): Promise<void> {
  const node = new Node({ name: 'dev' });
  const table = missionTable(node);
  table.load(Development);
  log(`missions offered: ${table.missions().join(', ')}`);
  log(`dev_mission: ${JSON.stringify(table.describe()['dev_mission'])}`);
  log(`Development.test() -> ${JSON.stringify(Development.test())}`);
  log(`Development.test(1, 'a', [], {}, null) -> ${JSON.stringify(Development.test(1, 'a', [], {}, null))}`);
  const pid = await GenServer.start(node, new Development(), 0, { name: 'development' });
  log(`GenServer.call(development, 'hello') -> ${JSON.stringify(await GenServer.call(pid, 'hello'))}`);
  await GenServer.stop(pid);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
