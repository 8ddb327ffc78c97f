import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { EXIT } from '../../lib/cli/wtd.js';
import { service, wtd, type Service } from '../fixtures/cli.js';

/**
 * README's tutorial and "Use WTD in your own project", followed as they
 * are written. The tutorial's commands run one by one as typed (each
 * `wtd start` gets `--port 0`, so that a spec never needs port 14153 free),
 * and what each comment says it prints is checked. The new section's
 * steps (`npx wtd new my-app`, `npm install`, `npm test`, `npm start`) are
 * followed by spec/package; its code is samples/your-project, run here.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The text of README between two markers. */
function section(from: string, to: string): string {
  const start = README.indexOf(from);
  const end = README.indexOf(to, start);
  expect(start, from).to.be.greaterThan(-1);
  expect(end, to).to.be.greaterThan(start);
  return README.slice(start, end);
}

/** The fenced blocks of `text`, in order, with their language. */
function blocks(text: string): { lang: string; body: string }[] {
  return [...text.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}

/** A command line split as a POSIX shell splits it (single quotes, no expansions: the tutorial has none). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

/** A line of the `text` block after `wtd start`, as a pattern: any node id, any port. */
function pattern(line: string): RegExp {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `^${escaped.replace(/\\\([A-Za-z0-9_-]{16}\\\)/g, '\\([A-Za-z0-9_-]{16}\\)').replace(/:14153/g, ':\\d+')}$`,
  );
}

describe('README, followed as written', function () {
  this.timeout(60_000);
  let cwd: string;
  let here: string;
  const running: Service[] = [];
  beforeEach(() => {
    cwd = process.cwd();
    here = mkdtempSync(join(tmpdir(), 'wtd-readme-'));
    symlinkSync(join(ROOT, 'dist'), join(here, 'dist')); // the checkout's build, as after `npm run build`
    process.chdir(here);
  });
  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop();
    process.chdir(cwd);
    rmSync(here, { recursive: true, force: true });
  });

  it('"Your first cluster": each command does what its comment says, up to the proxy part', async () => {
    const tutorial = blocks(section('## Your first cluster', '**On two machines'));
    let ran = 0;
    let started: Service | undefined;
    for (const block of tutorial) {
      if (block.lang === 'text') {
        expect(started, 'a text block follows wtd start').to.not.equal(undefined);
        const printed = started!.out.join('\n').split('\n');
        for (const expected of block.body.trimEnd().split('\n')) {
          expect(
            printed.some((line) => pattern(expected).test(line)),
            `${expected}\nin:\n${printed.join('\n')}`,
          ).to.equal(true);
        }
        continue;
      }
      for (const line of block.body.trimEnd().split('\n')) {
        if (line.startsWith('alias ')) continue;
        const [command, comment] = line.split(/\s+#\s+/, 2) as [string, string | undefined];
        for (const part of command.split(' && ')) {
          const [program, ...args] = words(part);
          expect(program, part).to.equal('wtd');
          if (args[0] === 'start') {
            started = await service([...args, '--port', '0'], 'is running');
            running.push(started);
            continue;
          }
          const res = await wtd(args);
          ran++;
          const said = `${part}  # ${comment}\n${res.out}\n${res.err}`;
          if (comment?.startsWith('refused: ')) {
            const code = /ERR_[A-Z_]+/.exec(comment)![0];
            expect(res.code, said).to.equal(EXIT.failed);
            expect(res.err, said).to.include(`[${code}]`);
            continue;
          }
          expect(res.code, said).to.equal(EXIT.ok);
          const value = comment === undefined ? undefined : /^("[^"]*"|\d+)/.exec(comment)?.[1];
          if (value !== undefined && part === command.split(' && ').at(-1)) expect(res.out, said).to.equal(value);
          if (comment?.endsWith('...')) expect(res.out, said).to.include(comment.slice(0, -3).replace(/,\s*$/, ''));
          if (comment?.startsWith("bob's grant: ")) {
            const grant = (JSON.parse((await wtd([...args, '--json'])).out) as { uses: number; state: string }[])[0]!;
            expect(`bob's grant: ${grant.uses} uses, ${grant.state}`).to.equal(comment);
          }
        }
      }
    }
    expect(ran).to.be.greaterThan(12);
  });

  it('"Use WTD in your own project": its code is samples/your-project, and runs under wtd start', async () => {
    const code = blocks(section('## Use WTD in your own project', '## Your first supervised server')).filter(
      (b) => b.lang === 'ts',
    );
    const files = ['app.ts', 'call.ts'].map((f) =>
      readFileSync(join(ROOT, 'samples', 'your-project', f), 'utf8').replace("from '../../lib/index.js'", "from 'wtd'"),
    );
    expect(code.map((b) => b.body)).to.have.length(2);
    code.forEach((b, i) => expect(files[i], `block ${i + 1}`).to.include(b.body));

    await wtd(['init', '--name', 'alice', '--data-dir', './alice']);
    running.push(
      await service(
        ['start', 'dist/samples/your-project/app.js', '--port', '0', '--data-dir', './alice'],
        'is running',
      ),
    );
    const granted = await wtd([
      'grant',
      '--missions',
      'greetings',
      '--rate',
      '10/s',
      '--out',
      'bob.grant',
      '--data-dir',
      './alice',
    ]);
    expect(granted.code, granted.err).to.equal(EXIT.ok);
    const logged: unknown[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => logged.push(...args);
    try {
      await import('../../samples/your-project/call.js');
    } finally {
      console.log = log;
    }
    expect(logged).to.deep.equal(['hello, bob', 0]);
  });
});
