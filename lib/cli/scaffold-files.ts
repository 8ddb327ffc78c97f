/**
 * The files `wtd new` writes: a project that builds with tsc, tests with
 * Node's own test runner, and runs its node with `wtd start`. The spec of
 * `wtd new` installs one and runs its `npm test` and `npm start`.
 * @module
 */

/** What the files depend on. */
export interface ProjectFacts {
  /** The npm package name. */
  name: string;
  /** The node's name (`wtd init --name`). */
  node: string;
  /** How the project depends on WTD: `^0.1.0`, a git URL, `file:...`. */
  wtd: string;
  typescript: string;
  typesNode: string;
}

/** Path (relative to the project) → content. */
export function projectFiles(p: ProjectFacts): Record<string, string> {
  return {
    'package.json': `${JSON.stringify(
      {
        name: p.name,
        version: '0.1.0',
        private: true,
        type: 'module',
        engines: { node: '>=20.19' },
        scripts: {
          build: 'tsc',
          test: 'npm run build && node --test dist/spec/app.test.js',
          prestart: `npm run build && wtd init --name ${p.node} --data-dir data`,
          start: 'wtd start dist/src/app.js --data-dir data',
          wtd: 'wtd',
        },
        dependencies: { wtd: p.wtd },
        devDependencies: { '@types/node': p.typesNode, typescript: p.typescript },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023'],
          types: ['node'],
          outDir: 'dist',
          rootDir: '.',
          strict: true,
          noImplicitOverride: true,
          // WTD's @WtdExport and @WtdBehaviour are TypeScript's (legacy) decorators.
          experimentalDecorators: true,
          sourceMap: true,
          skipLibCheck: true,
          // npm start builds again after npm test: only what changed.
          incremental: true,
        },
        include: ['src', 'spec'],
      },
      null,
      2,
    )}\n`,
    '.gitignore': 'node_modules/\ndist/\n# the node: its private key and grants\ndata/\n*.grant\n',
    'src/app.ts': APP,
    'spec/app.test.ts': SPEC,
    'README.md': readme(p),
  };
}

const APP = `/**
 * What this node runs and offers. \`wtd start dist/src/app.js\` (\`npm start\`)
 * loads the classes exported here, then calls \`start(node)\`.
 */
import {
  GenServer,
  Supervisor,
  WtdBehaviour,
  WtdExport,
  noreply,
  reply,
  type From,
  type Node,
  type SupervisorSpec,
} from 'wtd';

/**
 * A counter. Other nodes granted the mission \`greetings\` may call it
 * (\`call('get')\`) and cast to it (\`cast('inc')\`), by its registered name.
 */
@WtdBehaviour('greetings')
export class Counter extends GenServer<number> {
  override handleCall(_request: 'get', _from: From, count: number) {
    return reply(count, count);
  }
  override handleCast(_request: 'inc', count: number) {
    return noreply(count + 1);
  }
}

/** Restarts the counter if it crashes. */
export class AppSupervisor extends Supervisor {
  override init(): SupervisorSpec {
    return {
      strategy: 'one_for_one',
      children: [
        { id: 'counter', start: (parent) => GenServer.startLink(parent, new Counter(), 0, { name: 'counter' }) },
      ],
    };
  }
}

/** Functions other nodes granted \`greetings\` may call: \`Greeter/hello\`, with one argument. */
export class Greeter {
  static node: Node | undefined;

  @WtdExport('greetings')
  static async hello(name: string): Promise<string> {
    const counter = { node: Greeter.node!, name: 'counter' };
    GenServer.cast(counter, 'inc');
    const visits = await GenServer.call<number>(counter, 'get');
    return \`hello, \${name}, from \${Greeter.node!.name} (visit \${visits})\`;
  }
}

/** Called once the classes are loaded: \`node\` is the running node (a \`WtdNode\` under \`wtd start\`). */
export async function start(node: Node): Promise<void> {
  Greeter.node = node;
  await Supervisor.start(node, new AppSupervisor(), undefined, { name: 'app_sup' });
}
`;

const SPEC = `import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GenServer, WtdNode, type GrantFile } from 'wtd';
import { Counter, Greeter, start } from '../src/app.js';

// Two nodes in this one program, keeping nothing on disk: the app's, and a friend's.
let app: WtdNode;
let friend: WtdNode;
let grant: GrantFile;

before(async () => {
  app = await WtdNode.start({ name: 'app', dataDir: ':memory:' });
  app.load(Greeter).load(Counter);
  await start(app);
  await app.listen({ port: 0 });
  grant = await app.grant({ missions: ['greetings'], rate: '10/s' });
  friend = await WtdNode.start({ name: 'friend', dataDir: ':memory:' });
});

after(async () => {
  await friend.close();
  await app.close();
});

test('the counter counts, under its supervisor', async () => {
  const counter = { node: app, name: 'counter' };
  const before = await GenServer.call<number>(counter, 'get');
  GenServer.cast(counter, 'inc');
  assert.equal(await GenServer.call(counter, 'get'), before + 1);
});

test('a friend with a grant calls Greeter.hello and the counter', async () => {
  const remote = await friend.connect(grant);
  assert.match(await remote.call<string>('Greeter', 'hello', ['friend']), /^hello, friend, from app \\(visit \\d+\\)$/);
  assert.equal(typeof (await remote.genServer('greetings', 'counter').call('get')), 'number');
});

test('what the grant does not cover is refused before it runs', async () => {
  const remote = await friend.connect(grant);
  await assert.rejects(remote.call('Greeter', 'hello', []), { code: 'ERR_BAD_ARITY' });
  await assert.rejects(remote.call('Greeter', 'secret'), { code: 'ERR_MISSION_NOT_GRANTED' });
});
`;

function readme(p: ProjectFacts): string {
  return `# ${p.name}

A [WTD](https://www.npmjs.com/package/wtd) node: a supervised counter, and a
greeting that friends you grant the mission \`greetings\` may call.

\`\`\`sh
npm install
npm test     # builds (tsc), then runs spec/app.test.ts
npm start    # builds, makes the node's identity in ./data once, runs the node (Ctrl-C stops it)
\`\`\`

While it runs, grant a friend and try the call (\`npx wtd --help\` for every command):

\`\`\`sh
npx wtd missions --data-dir data
npx wtd grant --missions greetings --rate 10/s --label friend --out friend.grant --data-dir data
npx wtd call friend.grant Greeter hello '["friend"]'
npx wtd call friend.grant --behaviour counter call get
\`\`\`

\`src/app.ts\` is the node's code: classes marked with \`@WtdExport\` and
\`@WtdBehaviour\`, and \`start(node)\`, which starts the supervisor.
`;
}
