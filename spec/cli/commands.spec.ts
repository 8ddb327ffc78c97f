import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { COMMON } from '../../lib/cli/command.js';
import { COMMANDS, EXIT } from '../../lib/cli/wtd.js';
import { scratch, service, wtd, type Service, type WtdRun } from '../fixtures/cli.js';
import { arrived, releaseAll } from '../fixtures/waiting-module.js';

const GREETER = fileURLToPath(new URL('../../samples/greeter.js', import.meta.url));
const WAITING = fileURLToPath(new URL('../fixtures/waiting-module.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));

/** The error object a command prints with --json. */
function jsonError(
  run: WtdRun,
): { code: string; message: string; hint: string | null; exit: number } & Record<string, unknown> {
  expect(run.code, run.out + run.err).to.not.equal(EXIT.ok);
  const { error } = JSON.parse(run.out) as { error: ReturnType<typeof jsonError> };
  expect(error.exit).to.equal(run.code);
  return error;
}

/**
 * The flags in `text` that neither `command` takes nor the `wtd <other>`
 * named before them does: on the rest of the line, or within the quotes
 * that hold the other command.
 */
function unknownFlags(command: string, text: string): string[] {
  const wrong: string[] = [];
  const check = (segment: string, start: string): string => {
    let current = start;
    for (const m of segment.matchAll(/wtd ([a-z]+)|(--[a-z][a-z-]*)/g)) {
      if (m[1] !== undefined) {
        if (Object.hasOwn(COMMANDS, m[1])) current = m[1];
        continue;
      }
      const flag = m[2]!.slice(2);
      if (!Object.hasOwn(COMMON, flag) && !Object.hasOwn(COMMANDS[current]!.options, flag)) {
        wrong.push(`${current}: ${m[2]}`);
      }
    }
    return current;
  };
  for (const line of text.split('\n')) {
    let current = command;
    line.split("'").forEach((segment, i) => {
      if (i % 2 === 1) check(segment, current);
      else current = check(segment, current);
    });
  }
  return wrong;
}

/** Names of the library's API (functions called, option objects) that a CLI message must not show. */
const API_NAMES = /\bawait\b|\b[a-z][A-Za-z]*\(\{|\b(?:joinProxy|listen|connect|grant|load|start)\(|\.[a-z][A-Za-z]*\(/;

describe('wtd: missions, behaviours, cards, interrupts and what its messages say', function () {
  this.timeout(30_000);
  let home: string;
  let alice: string[];
  let bob: string[];
  const running: Service[] = [];
  /** Every failure printed in this file, by command: checked for API names and flags at the end. */
  const printed: [string, string][] = [];
  const run = async (args: string[], env: Record<string, string> = {}): Promise<WtdRun> => {
    const res = await wtd(args, env);
    if (res.code !== EXIT.ok) printed.push([args[0]!, res.err + res.out]);
    return res;
  };
  beforeEach(async () => {
    home = scratch();
    alice = ['--data-dir', join(home, 'alice')];
    bob = ['--data-dir', join(home, 'bob')];
    await wtd(['init', '--name', 'alice', ...alice]);
    await wtd(['init', '--name', 'bob', ...bob]);
  });
  afterEach(async () => {
    releaseAll();
    for (const s of running.splice(0)) await s.stop();
    rmSync(home, { recursive: true, force: true });
  });

  async function startAlice(module = GREETER, extra: string[] = []): Promise<Service> {
    const node = await service(['start', module, '--port', '0', ...extra, ...alice], 'is running');
    running.push(node);
    return node;
  }

  describe('wtd missions, and wtd grant of what is offered', () => {
    it('lists what the node offered when it last started, with arities, and whether it runs now', async () => {
      const before = await run(['missions', '--json', ...alice]);
      expect(jsonError(before)).to.include({ code: 'ERR_MISSING', exit: EXIT.notFound });
      const node = await startAlice();
      const listed = JSON.parse((await run(['missions', '--json', ...alice])).out) as {
        name: string;
        running: boolean;
        missions: Record<string, { functions: string[]; behaviours: { module: string; ops: string[] }[] }>;
      };
      expect([listed.name, listed.running]).to.deep.equal(['alice', true]);
      expect(listed.missions).to.deep.equal({
        greetings: {
          functions: ['Greeter/hello/1', 'Greeter/countdown/2'],
          behaviours: [{ module: 'Visitors', kind: 'gen_server', ops: ['call/1'] }],
        },
      });
      const human = await run(['missions', ...alice]);
      expect(human.out).to.match(
        /^alice offers \(as it started at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; running now\):\n/,
      );
      expect(human.out).to.include('greetings: Greeter/hello/1, Greeter/countdown/2, Visitors (gen_server: call/1)');
      await node.stop();
      running.pop();
      expect((JSON.parse((await run(['missions', '--json', ...alice])).out) as { running: boolean }).running).to.equal(
        false,
      );
      // A module file: what it would offer, without running its start function.
      const file = JSON.parse((await run(['missions', WAITING, '--json'])).out) as { missions: object };
      expect(file.missions).to.deep.equal({
        waiting: { functions: ['Waiter/wait/0', 'Waiter/now/0'], behaviours: [] },
      });
    });

    it('grant refuses a mission the node does not offer (ERR_UNKNOWN_MISSION), unless --allow-unknown', async () => {
      await startAlice();
      const grant = (missions: string, ...extra: string[]) =>
        run(['grant', '--missions', missions, '--rate', '1/s', '--out', join(home, 'x.grant'), ...extra, ...alice]);
      const typo = await grant('greeting', '--json');
      const error = jsonError(typo);
      expect(error).to.include({ code: 'ERR_UNKNOWN_MISSION', exit: EXIT.failed });
      expect(error.message).to.equal('alice does not offer the mission greeting (did you mean greetings?)');
      expect(error.hint).to.include('--allow-unknown');
      expect(existsSync(join(home, 'x.grant'))).to.equal(false);
      expect(JSON.parse((await run(['grants', '--json', ...alice])).out)).to.deep.equal([]);
      expect(jsonError(await grant('greetings,later', '--json')).message).to.equal(
        'alice does not offer the mission later',
      );
      expect(jsonError(await grant('Bad-Name', '--json')).code).to.equal('ERR_USAGE');
      expect((await grant('later', '--allow-unknown')).code).to.equal(EXIT.ok);
      // The grant file says what its missions covered, for the grantee's messages.
      expect((await grant('greetings')).code).to.equal(EXIT.ok);
      const file = JSON.parse(readFileSync(join(home, 'x.grant'), 'utf8')) as { covers: object };
      expect(Object.keys(file.covers)).to.deep.equal(['greetings']);
    });
  });

  describe('wtd call --behaviour', () => {
    it('calls an operation of a behaviour exposed with @WtdBehaviour; a bare word is a string', async () => {
      await startAlice();
      const file = join(home, 'bob.grant');
      await run(['grant', '--missions', 'greetings', '--rate', '100/s', '--out', file, ...alice]);
      expect((await run(['call', file, '--behaviour', 'visitors', 'call', 'visit'])).out).to.equal('1');
      expect((await run(['call', file, '--behaviour', 'visitors', 'call', '"visit"'])).out).to.equal('2');
      expect((await run(['call', file, '--behaviour', 'visitors', 'call', 'count', '--json'])).out).to.equal('2');
      // Refused before anything runs: an operation no behaviour has, another number of arguments,
      // one Visitors does not implement, a name that is not exposed.
      const typo = jsonError(await run(['call', file, '--behaviour', 'visitors', 'cll', 'count', '--json']));
      expect([typo.code, typo.message]).to.deep.equal([
        'ERR_USAGE',
        "no behaviour has an operation 'cll' (did you mean call?)",
      ]);
      expect(jsonError(await run(['call', file, '--behaviour', 'visitors', 'call', '--json'])).code).to.equal(
        'ERR_USAGE',
      );
      expect(jsonError(await run(['call', file, '--behaviour', 'visitors', 'cast', 'x', '--json'])).code).to.equal(
        'ERR_NOT_SUPPORTED',
      );
      expect(jsonError(await run(['call', file, '--behaviour', 'nobody', 'call', 'x', '--json'])).code).to.equal(
        'ERR_MISSION_NOT_GRANTED',
      );
      // With several missions in the grant, which one is said.
      const two = join(home, 'two.grant');
      await run(['grant', '--missions', 'greetings,other', '--allow-unknown', '--rate', '1/s', '--out', two, ...alice]);
      const which = jsonError(await run(['call', two, '--behaviour', 'visitors', 'call', 'count', '--json']));
      expect([which.code, which.message]).to.deep.equal([
        'ERR_USAGE',
        'which mission is the behaviour under? --mission greetings or other',
      ]);
      expect(
        (await run(['call', two, '--behaviour', 'visitors', '--mission', 'greetings', 'call', 'count'])).out,
      ).to.equal('2');
    });
  });

  describe('contact cards: whoami --out, grant --to, call --to --key-dir', () => {
    it('Bob calls with his own key, directly; Alice is told what to send back', async () => {
      await startAlice();
      await run(['whoami', '--out', join(home, 'bob.card'), ...bob]);
      const granted = await run([
        'grant',
        '--missions',
        'greetings',
        '--rate',
        '10/s',
        '--to',
        join(home, 'bob.card'),
        ...alice,
      ]);
      expect(granted.out.split('\n').slice(1)).to.deep.equal([
        `Now send bob your card (nothing in it is secret): wtd whoami --out alice.card --data-dir ${join(home, 'alice')}`,
        'With it, bob calls: wtd call --to alice.card --key-dir <their data dir> <module> <function> [args]',
      ]);
      await run(['whoami', '--out', join(home, 'alice.card'), ...alice]);
      const hello = await run([
        'call',
        '--to',
        join(home, 'alice.card'),
        '--key-dir',
        join(home, 'bob'),
        'Greeter',
        'hello',
        '["bob"]',
      ]);
      expect([hello.code, hello.out]).to.deep.equal([EXIT.ok, '"hello, bob, from alice"']);
      // --data-dir is the default key directory.
      expect(
        (await run(['call', '--to', join(home, 'alice.card'), 'Greeter', 'hello', '["bob"]', ...bob])).out,
      ).to.equal('"hello, bob, from alice"');
      // Another node's key was granted nothing.
      await wtd(['init', '--name', 'eve', '--data-dir', join(home, 'eve')]);
      const eve = jsonError(
        await run([
          'call',
          '--to',
          join(home, 'alice.card'),
          '--key-dir',
          join(home, 'eve'),
          'Greeter',
          'hello',
          '["e"]',
          '--json',
        ]),
      );
      expect(eve.code).to.equal('ERR_UNKNOWN_KEY');
      // A grant file is not a card, and --key-dir goes with --to only.
      expect(jsonError(await run(['call', '--to', join(home, 'nothing.card'), 'G', 'h', '--json'])).code).to.equal(
        'ERR_MISSING',
      );
      writeFileSync(join(home, 'x.grant'), JSON.stringify({ wtd: 'grant' }));
      expect(jsonError(await run(['call', '--to', join(home, 'x.grant'), 'G', 'h', '--json'])).code).to.equal(
        'ERR_USAGE',
      );
      expect(jsonError(await run(['call', join(home, 'x.grant'), 'G', 'h', '--key-dir', 'k', '--json'])).code).to.equal(
        'ERR_USAGE',
      );
    });

    it('through a proxy: with the key of a node that is not running; refused beside one that is', async () => {
      const proxy = await service(['proxy', '--port', '0', '--data-dir', join(home, 'proxy')], 'listening at');
      running.push(proxy);
      const url = proxy.url('listening at');
      await startAlice(GREETER, ['--no-listen', '--proxy', url, '--email', 'alice@example.org']);
      await run(['whoami', '--out', join(home, 'bob.card'), ...bob]);
      await run(['grant', '--missions', 'greetings', '--rate', '10/s', '--to', join(home, 'bob.card'), ...alice]);
      await run(['whoami', '--out', join(home, 'alice.card'), ...alice]);
      const card = JSON.parse(readFileSync(join(home, 'alice.card'), 'utf8')) as { address: null; proxy: string };
      expect([card.address, card.proxy]).to.deep.equal([null, url]);
      const call = ['call', '--to', join(home, 'alice.card'), 'Greeter', 'hello', '["bob"]', ...bob];
      // Bob's node never joined a proxy: it needs an e-mail to register with.
      expect(jsonError(await run([...call, '--json'])).code).to.equal('ERR_USAGE');
      const hello = await run([...call, '--email', 'bob@example.org']);
      expect([hello.code, hello.out]).to.deep.equal([EXIT.ok, '"hello, bob, from alice"']);
      const bobNode = await service(
        ['start', GREETER, '--no-listen', '--proxy', url, '--email', 'bob@example.org', ...bob],
        'is running',
      );
      running.push(bobNode);
      const beside = jsonError(await run([...call, '--json']));
      expect(beside.code).to.equal('ERR_DATA_DIR_LOCKED');
      expect(beside.hint).to.equal('make the call from that program, or stop the node first');
    });
  });

  describe('a proxied call with a grant file', () => {
    it('signs as one identity kept in the data directory: five calls, one caller at the proxy', async () => {
      const proxy = await service(['proxy', '--port', '0', '--data-dir', join(home, 'proxy')], 'listening at');
      running.push(proxy);
      const url = proxy.url('listening at');
      await startAlice(GREETER, ['--no-listen', '--proxy', url, '--email', 'alice@example.org']);
      const file = join(home, 'bob.grant');
      await run(['grant', '--missions', 'greetings', '--rate', '100/s', '--out', file, ...alice]);
      const carol = ['--data-dir', join(home, 'carol')];
      for (let i = 0; i < 5; i++) {
        expect((await run(['call', file, 'Greeter', 'hello', `["c${i}"]`, ...carol])).out).to.equal(
          `"hello, c${i}, from alice"`,
        );
      }
      const status = (await (await fetch(`${url}/status.json`)).json()) as { nodes: { name: string }[] };
      expect(status.nodes.filter((n) => n.name === 'wtd-call')).to.have.length(1);
      expect(existsSync(join(home, 'carol', 'caller', 'wtd.db'))).to.equal(true);
    });

    it('a direct call signs as the one caller node of its data directory; another directory is refused', async () => {
      await startAlice();
      const file = join(home, 'bob.grant');
      await run(['grant', '--missions', 'greetings', '--rate', '10/s', '--out', file, ...alice]);
      for (const name of ['c', 'd']) {
        const res = await run(['call', file, 'Greeter', 'hello', `["${name}"]`, '--data-dir', join(home, 'carol')]);
        expect(res.out).to.equal(`"hello, ${name}, from alice"`);
      }
      expect(existsSync(join(home, 'carol', 'caller', 'wtd.db'))).to.equal(true);
      const other = await run(['call', file, 'Greeter', 'hello', '["e"]', '--data-dir', join(home, 'dave'), '--json']);
      expect(JSON.parse(other.out).error.code).to.equal('ERR_WRONG_ISSUER');
    });
  });

  describe('Ctrl-C during wtd call', () => {
    let file: string;
    beforeEach(async () => {
      await startAlice(WAITING);
      file = join(home, 'w.grant');
      await run(['grant', '--missions', 'waiting', '--rate', '10/s', '--out', file, ...alice]);
    });

    it('ends a call waiting for its answer at once, saying it may have run (exit 130)', async () => {
      let interrupt!: () => void;
      const stop = new Promise<void>((r) => (interrupt = r));
      const out: string[] = [];
      const done = (await import('../../lib/cli/wtd.js')).runWtd(
        ['call', file, 'Waiter', 'wait', '--timeout', '60000', '--json'],
        {
          out: (t) => out.push(t),
          err: () => undefined,
          stop,
          env: {},
        },
      );
      await arrived();
      interrupt();
      expect(await done).to.equal(EXIT.interrupted);
      const { error } = JSON.parse(out.join('\n')) as { error: { code: string; mayHaveRun: boolean } };
      expect([error.code, error.mayHaveRun]).to.deep.equal(['ERR_INTERRUPTED', true]);
    });

    it('before the call is sent, it says the call did not run', async () => {
      const out: string[] = [];
      const code = await (
        await import('../../lib/cli/wtd.js')
      ).runWtd(['call', file, 'Waiter', 'now', '--json'], {
        out: (t) => out.push(t),
        err: () => undefined,
        stop: Promise.resolve(),
        env: {},
      });
      expect(code).to.equal(EXIT.interrupted);
      const { error } = JSON.parse(out.join('\n')) as { error: { code: string; mayHaveRun: boolean } };
      expect([error.code, error.mayHaveRun]).to.deep.equal(['ERR_INTERRUPTED', false]);
    });

    it('the wtd program: the first SIGINT ends it, and it says so', async () => {
      const child = spawn(process.execPath, [MAIN, 'call', file, 'Waiter', 'wait', '--timeout', '60000'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      await arrived();
      child.kill('SIGINT');
      expect(await exited, stderr).to.equal(EXIT.interrupted);
      expect(stderr).to.equal(
        "wtd call: interrupted while waiting for alice's answer: the call may have run there [ERR_INTERRUPTED]\n",
      );
    });
  });

  describe('wtd start of a module that cannot run', () => {
    let dir: string;
    beforeEach(() => {
      dir = join(home, 'app');
      mkdirSync(join(dir, 'src'), { recursive: true });
    });
    const start = (file: string) => run(['start', join(dir, file), '--port', '0', '--json', ...alice]);

    it('TypeScript: says in one line to compile first, and which file to give', async () => {
      writeFileSync(
        join(dir, 'tsconfig.json'),
        '{ // comments are fine\n "compilerOptions": { "outDir": "dist", "rootDir": "." }, }',
      );
      writeFileSync(join(dir, 'src', 'app.ts'), 'export {};');
      const ts = await run(['start', join(dir, 'src', 'app.ts'), ...alice]);
      expect(ts.code).to.equal(EXIT.usage);
      expect(ts.err.split('\n')).to.have.length(1);
      expect(ts.err).to.match(
        /compile it first \(npx tsc\), then give the file it writes: wtd start \S*app\/dist\/src\/app\.js \[ERR_USAGE\]$/,
      );
    });

    it('a module that fails to load is reported with its file and line: ERR_MODULE_LOAD', async () => {
      writeFileSync(join(dir, 'syntax.mjs'), 'export const a = 1;\nexport const b = ;\n');
      writeFileSync(join(dir, 'nested.mjs'), "import './syntax.mjs';\nexport class A {}\n");
      writeFileSync(join(dir, 'throws.mjs'), "export const a = 1;\nthrow new Error('no config here');\n");
      writeFileSync(join(dir, 'missing.mjs'), "import x from 'no-such-package-here';\nexport { x };\n");
      writeFileSync(join(dir, 'start.mjs'), 'export async function start() {\n  null.go();\n}\n');
      const cases: [string, RegExp][] = [
        ['syntax.mjs', /syntax\.mjs failed to load at \S*syntax\.mjs:2: SyntaxError: Unexpected token ';'$/],
        ['nested.mjs', /nested\.mjs failed to load at \S*syntax\.mjs:2: SyntaxError/],
        ['throws.mjs', /throws\.mjs failed to load at \S*throws\.mjs:2:7: no config here$/],
        ['missing.mjs', /missing\.mjs failed to load: .*no-such-package-here/],
        ['start.mjs', /the start function of \S*start\.mjs failed at \S*start\.mjs:2:8: TypeError: /],
      ];
      for (const [file, message] of cases) {
        const error = jsonError(await start(file));
        expect(error.code, file).to.equal('ERR_MODULE_LOAD');
        expect(error.message, file).to.match(message);
      }
      expect(jsonError(await start('missing.mjs')).hint).to.equal(
        'install it in the project: npm install no-such-package-here',
      );
      // The node did not keep running: the data directory is free again.
      expect((await run(['missions', ...alice])).code).to.equal(EXIT.notFound);
    });
  });

  describe('every message of the command line', () => {
    it('--json gives one error object for each exit code', async () => {
      expect(jsonError(await run(['call', join(home, 'none.grant'), 'G', 'h', '--json'])).exit).to.equal(EXIT.notFound);
      expect(jsonError(await run(['revoke', 'nobody', '--json', ...alice])).code).to.equal('ERR_MISSING');
      // A grant file of a node that is not running (nothing listens on port 1).
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const node = { id: 'x', name: 'dave', address: 'http://127.0.0.1:1', proxy: null };
      const key = publicKey.export({ format: 'jwk' });
      writeFileSync(
        join(home, 'down.grant'),
        JSON.stringify({
          wtd: 'grant',
          version: 1,
          node: { ...node, publicJwk: key },
          kid: 'k',
          privateJwk: privateKey.export({ format: 'jwk' }),
          missions: ['m'],
          expiresAt: null,
        }),
      );
      const down = jsonError(await run(['call', join(home, 'down.grant'), 'G', 'h', '--json']));
      expect([down.code, down.exit]).to.deep.equal(['ERR_NODE_DOWN', EXIT.unreachable]);
      expect(
        jsonError(await run(['call', join(home, 'down.grant'), 'G', 'h', '--timeout', 'soon', '--json'])).code,
      ).to.equal('ERR_USAGE');
    });

    it('name only flags that exist, in every usage, help and hint', () => {
      for (const [name, command] of Object.entries(COMMANDS)) {
        expect(unknownFlags(name, `${command.usage}\n${command.help}`), name).to.deep.equal([]);
      }
    });

    it('printed in this file: no API names, each reason once, and only flags that exist', () => {
      expect(printed.length).to.be.greaterThan(20);
      for (const [command, text] of printed) {
        expect(text, text).to.not.match(API_NAMES);
        expect(unknownFlags(command, text), text).to.deep.equal([]);
        const first = text.split('\n')[0]!;
        expect(first.match(/\[ERR_[A-Z_]+\]/g) ?? [], text).to.have.length.below(2);
      }
    });
  });
});
