import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LAYERS = join(ROOT, 'docs', 'layers');

describe('the API reference, grouped by layer (docs/layers)', function () {
  this.timeout(60_000);
  it('the layers together show every name lib/index.ts exports, each in one layer', () => {
    const files = readdirSync(LAYERS).map((f) => join(LAYERS, f));
    const index = join(ROOT, 'lib', 'index.ts');
    const program = ts.createProgram([index, ...files], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      experimentalDecorators: true,
      noEmit: true,
    });
    const checker = program.getTypeChecker();
    const names = (file: string) =>
      checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)!)!).map((s) => s.getName());
    const shown = files.flatMap(names);
    expect([...shown].sort()).to.deep.equal([...names(index)].sort());
    expect(new Set(shown).size).to.equal(shown.length);
  });
});
