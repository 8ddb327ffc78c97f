import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';

const INDEX = fileURLToPath(new URL('../../../lib/index.ts', import.meta.url));

/** Every name lib/index.ts exports, with whether its doc comment has a summary and an @example. */
export function exportedDocs(): { name: string; documented: boolean; example: boolean }[] {
  const program = ts.createProgram([INDEX], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    experimentalDecorators: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!;
  return checker.getExportsOfModule(moduleSymbol).map((symbol) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    const tags = target.getJsDocTags(checker);
    const text = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
    return { name: symbol.getName(), documented: text.length > 0, example: tags.some((t) => t.name === 'example') };
  });
}

describe('the public API (lib/index.ts)', function () {
  this.timeout(60_000);
  it('every export has a doc comment with an example', () => {
    const docs = exportedDocs();
    expect(docs.length).to.be.greaterThan(100);
    expect(docs.filter((d) => !d.documented).map((d) => d.name)).to.deep.equal([]);
    expect(docs.filter((d) => !d.example).map((d) => d.name)).to.deep.equal([]);
  });
});
