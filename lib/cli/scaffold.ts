import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, output, type Command } from './command.js';
import { projectFiles } from './scaffold-files.js';

/**
 * `wtd new my-app`: a project that depends on WTD, as `mix new` and
 * `nest new` make one. It lives in the `wtd` package itself rather than in
 * a `create-wtd` package for `npm create wtd`: one package to publish, the
 * scaffold always matches the version that writes it, and it works the
 * same from npm, a git dependency or a tarball (`npx wtd new`).
 * @module
 */

/** The root of the package this command runs from (where its package.json is). */
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface PackageJson {
  version: string;
  devDependencies?: Record<string, string>;
}

function ownPackage(): PackageJson {
  return JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as PackageJson;
}

/** The version of the `wtd` package this command runs from. */
export function ownVersion(): string {
  return ownPackage().version;
}

const NPM_NAME = /^[a-z0-9][a-z0-9._~-]{0,213}$/;

export const scaffold: Command = {
  summary: 'make a new project that runs a WTD node: package.json, tsconfig, a module and its spec',
  usage: 'wtd new <directory> [--name my-app] [--wtd <dependency spec>]',
  help: `Writes a TypeScript project into <directory> (which must not exist, or be empty): package.json
(ESM, with build, test and start scripts), tsconfig.json with the flags WTD needs, src/app.ts
(a GenServer under a supervisor, and a function exported with @WtdExport), spec/app.test.ts
(Node's test runner), README.md and .gitignore. Then: cd <directory> && npm install && npm test.
--name is the package name (default: the directory's name).
--wtd says how the project depends on WTD: default ^<this version> from npm, or file:<checkout>
when this command runs from a checkout of WTD; give a git URL or a tarball path to choose.`,
  options: { name: { type: 'string' }, wtd: { type: 'string' } },
  args: { min: 1, max: 1 },
  async run(ctx) {
    const dir = resolve(ctx.positionals[0]!);
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new UsageError(`${ctx.positionals[0]} exists and is not empty`, 'give a new directory');
    }
    const name = (ctx.values.name as string | undefined) ?? basename(dir).toLowerCase();
    if (!NPM_NAME.test(name)) {
      throw new UsageError(
        `'${name}' is not a package name: lowercase letters, digits, '-', '.', '_' and '~'`,
        '--name <name> gives another',
      );
    }
    const own = ownPackage();
    const files = projectFiles({
      name,
      node: name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64),
      wtd: (ctx.values.wtd as string | undefined) ?? defaultDependency(own.version),
      typescript: own.devDependencies?.typescript ?? '^5.9.0',
      typesNode: own.devDependencies?.['@types/node'] ?? '^20.19.0',
    });
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const shown = relative(process.cwd(), dir) || '.';
    output(
      ctx,
      { dir, name, files: Object.keys(files) },
      [
        `Created ${name} in ${shown}: a node with a supervised counter, and Greeter/hello for friends you grant.`,
        'Next:',
        ...(shown === '.' ? [] : [`  cd ${shown}`]),
        '  npm install',
        '  npm test     # builds, then runs spec/app.test.ts',
        '  npm start    # builds, then runs the node (Ctrl-C stops it)',
      ].join('\n'),
    );
    return 0;
  },
};

/**
 * How a new project depends on WTD: the npm version when this command was
 * installed as a package, or the checkout it runs from (which npm links).
 */
function defaultDependency(version: string): string {
  const installed = PACKAGE_ROOT.split(sep).includes('node_modules');
  return installed ? `^${version}` : `file:${PACKAGE_ROOT}`;
}
