import { expect } from 'chai';
import {
  GenEvent,
  GenFsm,
  GenServer,
  MissionError,
  MissionTable,
  Supervisor,
  WtdBehaviour,
  WtdExport,
  missionTable,
  nextState,
} from '../../lib/index.js';
import { Development } from '../../samples/development.js';
import { testNode, thrown } from '../fixtures/helpers.js';

function loadError(target: object, options?: { module?: string }, table = new MissionTable()): MissionError {
  const err = thrown(() => table.load(target, options));
  expect(err).to.be.instanceOf(MissionError);
  return err;
}

describe('@WtdExport(mission) and @WtdBehaviour(mission) with MissionTable.load(target, options)', () => {
  it('builds mission → functions and behaviours from the seed example', () => {
    const table = new MissionTable();
    table.load(Development);
    expect(table.missions()).to.deep.equal(['dev_mission']);
    const entry = table.mission('dev_mission')!;
    expect(entry.functions.map((f) => f.path)).to.deep.equal(['Development/test']);
    expect(entry.behaviours.map((b) => [b.module, b.kind, b.ops])).to.deep.equal([
      ['Development', 'gen_server', ['call', 'cast']],
    ]);
    const fn = table.lookupFunction('Development', 'test', 'dev_mission')!;
    expect(fn.invoke()).to.equal('test/0 called');
    expect(fn.invoke(1, 'x', [1], null, new Date())).to.deep.equal(['number', 'string', 'array', 'null', 'date']);
    expect(table.describe()).to.deep.equal({
      dev_mission: { functions: ['Development/test'], behaviours: ['Development'] },
    });
  });

  it('one class serves several missions; one mission spans classes; instance methods bind to the instance', () => {
    class Maths {
      constructor(private readonly factor = 2) {}
      @WtdExport('maths')
      @WtdExport('public')
      static add(a: number, b: number) {
        return a + b;
      }
      @WtdExport('maths')
      scale(x: number) {
        return x * this.factor;
      }
    }
    class Strings {
      @WtdExport('public')
      static upper(s: string) {
        return s.toUpperCase();
      }
    }
    const table = new MissionTable();
    table.load(new Maths(3));
    table.load(Strings, { module: 'str' });
    expect(table.missions()).to.deep.equal(['maths', 'public']);
    expect(
      table
        .mission('public')!
        .functions.map((f) => f.path)
        .sort(),
    ).to.deep.equal(['Maths/add', 'str/upper']);
    expect(table.lookupFunction('Maths', 'scale', 'maths')!.invoke(5)).to.equal(15);
    expect(table.lookupFunction('Maths', 'scale', 'public')).to.equal(undefined);
    expect(
      table
        .lookupFunction('Maths', 'add')
        .map((f) => f.mission)
        .sort(),
    ).to.deep.equal(['maths', 'public']);
    expect(table.modules()).to.deep.equal(['Maths', 'str']);
  });

  it('a zero-argument class gets an instance made for its instance methods', () => {
    class Greeter {
      greeting = 'hi';
      @WtdExport('greet')
      hello(name: string) {
        return `${this.greeting} ${name}`;
      }
    }
    const table = new MissionTable();
    table.load(Greeter);
    expect(table.lookupFunction('Greeter', 'hello', 'greet')!.invoke('bob')).to.equal('hi bob');
  });

  it('exposes each kind of behaviour with its client operations', () => {
    @WtdBehaviour('ops')
    class Sup extends Supervisor {
      override init() {
        return { children: [] };
      }
    }
    @WtdBehaviour('ops')
    class Room extends GenEvent {}
    @WtdBehaviour('ops')
    class Light extends GenFsm {
      override init() {
        return nextState('red', null);
      }
    }
    const table = new MissionTable();
    table.load(Sup);
    table.load(Room);
    table.load(Light);
    expect(table.mission('ops')!.behaviours.map((b) => [b.module, b.kind])).to.deep.equal([
      ['Sup', 'supervisor'],
      ['Room', 'gen_event'],
      ['Light', 'gen_fsm'],
    ]);
    expect(table.behaviourOf(new Room(), 'ops')!.ops).to.include('notify');
    expect(table.behaviourOf(new Room(), 'other')).to.equal(undefined);
  });

  it('behaviourOf finds a subclass of an exposed behaviour', () => {
    class Sub extends Development {}
    const table = new MissionTable();
    table.load(Development);
    expect(table.behaviourOf(new Sub(), 'dev_mission')!.module).to.equal('Development');
  });

  it('refuses invalid mission names, including prototype tricks', () => {
    for (const mission of ['', 'Has Space', '__proto__', 'UPPER', '9lives', 'a'.repeat(65), 42]) {
      class Bad {
        @WtdExport(mission as string)
        static f() {}
      }
      expect(loadError(Bad).code, String(mission)).to.equal('ERR_INVALID_MISSION');
    }
    @WtdBehaviour('constructor ')
    class BadBehaviour extends GenServer {}
    expect(loadError(BadBehaviour).code).to.equal('ERR_INVALID_MISSION');
  });

  it('refuses exporting something that is not a public method', () => {
    class Field {
      @WtdExport('m')
      value = 3;
    }
    expect(loadError(Field).code).to.equal('ERR_NOT_A_METHOD');
    class Underscore {
      @WtdExport('m')
      static _hidden() {}
    }
    expect(loadError(Underscore).code).to.equal('ERR_NOT_A_METHOD');
    const sym = Symbol('s');
    class Sym {
      @WtdExport('m')
      static [sym]() {}
    }
    expect(loadError(Sym).code).to.equal('ERR_NOT_A_METHOD');
    class Getter {
      @WtdExport('m')
      static get value() {
        return 1;
      }
    }
    expect(loadError(Getter).code).to.equal('ERR_NOT_A_METHOD');
  });

  it('refuses @WtdBehaviour on a class that is not a behaviour', () => {
    @WtdBehaviour('m')
    class Plain {}
    const err = loadError(Plain);
    expect(err.code).to.equal('ERR_NOT_A_BEHAVIOUR');
  });

  it('refuses the same module name twice, and changes nothing on a refused load', () => {
    const table = new MissionTable();
    table.load(Development);
    expect(loadError(Development, undefined, table).code).to.equal('ERR_DUPLICATE_MODULE');
    class Partial {
      @WtdExport('fine')
      static ok() {}
      @WtdExport('NOT FINE')
      static bad() {}
    }
    expect(loadError(Partial, undefined, table).code).to.equal('ERR_INVALID_MISSION');
    expect(table.missions()).to.deep.equal(['dev_mission']);
    expect(table.modules()).to.deep.equal(['Development']);
  });

  it('refuses bad module names, classes that need an instance, and classes with nothing to offer', () => {
    expect(loadError(Development, { module: 'no/slash' }).code).to.equal('ERR_INVALID_NAME');
    class NeedsArgs {
      constructor(readonly db: object) {}
      @WtdExport('m')
      query() {
        return this.db;
      }
    }
    expect(loadError(NeedsArgs).code).to.equal('ERR_NEEDS_INSTANCE');
    class Nothing {}
    expect(loadError(Nothing).code).to.equal('ERR_NOTHING_EXPORTED');
    expect(thrown(() => new MissionTable().load(42 as never))).to.be.instanceOf(TypeError);
  });

  it('missionTable(node) is one table per node', () => {
    const a = testNode({ name: 'a' }).node;
    const b = testNode({ name: 'b' }).node;
    expect(missionTable(a)).to.equal(missionTable(a));
    expect(missionTable(a)).not.to.equal(missionTable(b));
  });
});
