import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { NPM_ENV, run } from '../fixtures/npm.js';

/**
 * WTD as a dependency, as a user gets it: `npm pack` of the sources alone
 * (no dist/: what a git dependency or a publish starts from) builds the
 * package; it installs into an empty project, imports, and runs `npx wtd`;
 * `wtd new` scaffolds a project whose own `npm test` passes and whose
 * `npm start` runs its node. These are the steps of README's "Use WTD in
 * your own project", with the tarball in place of the npm registry's wtd.
 *
 * The installs run with --ignore-scripts and get better-sqlite3's native
 * addon from this checkout's own install (what its install script would
 * fetch from GitHub, which CI may not reach; the same version is
 * installed): the rest comes from npm's cache, warm after `npm ci`, or the
 * registry.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'lib'];
const SQLITE = JSON.parse(readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')) as {
  version: string;
};
const ADDON = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';

/** Installs `specs` into the project at `dir` as a user would, minus the native build (see above). */
async function install(dir: string, specs: string[]): Promise<void> {
  await run(
    'npm',
    ['install', '--no-save', '--ignore-scripts', '--prefer-offline', ...specs, `better-sqlite3@${SQLITE.version}`],
    dir,
    {
      timeoutMs: 120_000,
    },
  );
  mkdirSync(join(dir, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
  copyFileSync(join(ROOT, ADDON), join(dir, ADDON));
}

describe('the wtd package: packed, installed, and scaffolding a project of its own', function () {
  this.timeout(240_000);
  let home: string;
  let tarball: string;
  let app: string;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'wtd-package-'));
    const src = join(home, 'src');
    mkdirSync(src);
    for (const f of SOURCES) cpSync(join(ROOT, f), join(src, f), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
    mkdirSync(join(home, 'packed'));
    await run('npm', ['pack', '--pack-destination', join(home, 'packed')], src);
    const [file] = readdirSync(join(home, 'packed'));
    tarball = join(home, 'packed', file!);
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('npm pack of the sources builds the package: the compiled library and the wtd command, no specs', async () => {
    const { out } = await run('tar', ['tzf', tarball], home);
    const files = out.trim().split('\n');
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/lib/index.js',
      'dist/lib/index.d.ts',
      'dist/lib/cli/main.js',
    ]) {
      expect(files).to.include(`package/${f}`);
    }
    expect(files.filter((f) => !f.startsWith('package/dist/lib/') && !/^package\/[^/]+$/.test(f))).to.deep.equal([]);
    expect(files.filter((f) => f.endsWith('.map'))).to.deep.equal([]);
  });

  it('installs into an empty project, imports as wtd, and runs npx wtd', async () => {
    const consumer = join(home, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await install(consumer, [tarball]);
    const script =
      "import { WtdNode, GenServer } from 'wtd';" +
      "const node = await WtdNode.start({ name: 'probe', dataDir: ':memory:' });" +
      'console.log(typeof GenServer.call, node.name, node.id.length); await node.close();';
    const imported = await run(process.execPath, ['--input-type=module', '-e', script], consumer);
    expect(imported.out.trim()).to.equal('function probe 16');
    const help = await run('npx', ['--no-install', 'wtd', '--help'], consumer);
    expect(help.out).to.match(/^wtd: run WTD nodes/);
    // Scaffold from this install, as `npx wtd new my-app` does.
    const made = await run('npx', ['--no-install', 'wtd', 'new', 'my-app', '--wtd', `file:${tarball}`], consumer);
    expect(made.out).to.include('cd my-app');
    app = join(consumer, 'my-app');
    // Without --wtd, a project made by an installed wtd depends on its version from npm.
    await run('npx', ['--no-install', 'wtd', 'new', 'plain'], consumer);
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const plain = JSON.parse(readFileSync(join(consumer, 'plain', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(plain.dependencies).to.deep.equal({ wtd: `^${version}` });
  });

  it("wtd new: the project's own npm test passes, and npm start runs its node", async () => {
    expect(app, 'the install above made the project').to.be.a('string');
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as {
      type: string;
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
    };
    expect(pkg.type).to.equal('module');
    expect(Object.keys(pkg.scripts)).to.include.members(['build', 'test', 'start']);
    const tsconfig = JSON.parse(readFileSync(join(app, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: Record<string, unknown>;
    };
    expect(tsconfig.compilerOptions).to.include({ experimentalDecorators: true, module: 'NodeNext' });
    await install(app, []);
    const test = await run('npm', ['test'], app, { timeoutMs: 120_000 });
    expect(test.out)
      .to.match(/# pass 3\b/)
      .and.match(/# fail 0\b/);

    // npm start: builds, makes the node's identity once, runs it until Ctrl-C.
    const child = spawn('npm', ['start', '--', '--port', '0'], {
      cwd: app,
      env: { ...process.env, ...NPM_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: Ctrl-C reaches npm, sh and node as in a terminal
    });
    let out = '';
    let err = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('is running')) resolve();
      });
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      void exited.then((code) => reject(new Error(`npm start exited ${code}:\n${out}\n${err}`)));
    });
    expect(out).to.match(/node my-app \(\S+\) is running\./);
    expect(out).to.include('greetings: Greeter/hello/1, Counter (gen_server: call/1, cast/1)');
    process.kill(-child.pid!, 'SIGINT');
    await exited; // npm itself ends by the signal, as it does in a terminal
    expect(err).to.include('stopping…');
    // The node closed cleanly: it gave its data directory up.
    expect(existsSync(join(app, 'data', 'node.pid'))).to.equal(false);
    expect(JSON.parse(readFileSync(join(app, 'data', 'node.json'), 'utf8'))).to.include({ name: 'my-app' });
  });
});
