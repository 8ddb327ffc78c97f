import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { wtd } from '../fixtures/cli.js';

const CLI_MD = fileURLToPath(new URL('../../../docs/cli.md', import.meta.url));

describe('docs/cli.md: the reference of the wtd command', () => {
  it("is made from the commands' own help, and is current (npm run docs:cli remakes it)", async () => {
    const made = await wtd(['help', '--markdown']);
    expect(`${made.out}\n`).to.equal(readFileSync(CLI_MD, 'utf8'));
    expect(made.out).to.include('## wtd call').and.include('## wtd new').and.include('--allow-unknown');
  });
});
