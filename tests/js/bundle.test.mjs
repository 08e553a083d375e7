// Builds the widget bundle the way the server serves /widget/keyri.js and
// checks that it parses and defines the widget without touching the page.
// Run with: node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (p) => readFileSync(join(root, p), 'utf8');

/** The served bundle: one function scope holding the CSS string and the three scripts. */
export const buildBundle = () =>
  '(function(){\nconst KEYRI_CSS = ' + JSON.stringify(read('assets/widget/widget.css')) + ';\n'
  + read('assets/vendor/qrcode-generator/qrcode.js')
  + read('assets/widget/hpke.js')
  + read('assets/widget/widget.js')
  + '\n})();';

test('bundle passes node --check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyri-bundle-'));
  try {
    const file = join(dir, 'keyri.js');
    writeFileSync(file, buildBundle());
    execFileSync(process.execPath, ['--check', file], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('each widget file parses on its own', () => {
  for (const p of ['assets/widget/hpke.js', 'assets/widget/widget.js', 'assets/demo.js']) {
    assert.doesNotThrow(() => new vm.Script(read(p), { filename: p }), p);
  }
});

test('source lines stay within 100 columns', () => {
  for (const p of ['assets/widget/hpke.js', 'assets/widget/widget.js', 'assets/widget/widget.css',
    'assets/demo.js', 'tests/js/hpke.test.mjs', 'tests/js/bundle.test.mjs']) {
    read(p).split('\n').forEach((line, i) => {
      assert.ok(line.length <= 100, `${p}:${i + 1} is ${line.length} columns`);
    });
  }
});

test('bundle defines <keyri-login> and window.Keyri, leaving page globals alone', () => {
  const defined = new Map();
  const amdCalls = [];
  const define = (...args) => amdCalls.push(args);
  define.amd = {};
  const sandbox = {
    define,
    console,
    crypto: globalThis.crypto,
    TextEncoder,
    TextDecoder,
    URL,
    CustomEvent: class {},
    HTMLElement: class {},
    isSecureContext: true,
    document: {
      currentScript: { src: 'https://keyri.example/widget/keyri.js' },
      baseURI: 'https://app.example/login',
    },
    customElements: {
      get: (name) => defined.get(name),
      define: (name, cls) => {
        if (defined.has(name)) throw new Error(`${name} already defined`);
        defined.set(name, cls);
      },
    },
  };
  sandbox.window = sandbox;
  vm.createContext(sandbox);
  const bundle = buildBundle();
  vm.runInContext(bundle, sandbox, { filename: 'keyri.js' });
  // A second copy on the same page must not throw.
  vm.runInContext(bundle, sandbox, { filename: 'keyri.js' });

  assert.equal(typeof defined.get('keyri-login'), 'function');
  assert.deepEqual([...defined.get('keyri-login').observedAttributes], ['app-key', 'server']);
  assert.ok(Object.isFrozen(sandbox.Keyri));
  assert.equal(sandbox.Keyri.version, '1');
  assert.equal(typeof sandbox.Keyri.hpke.open, 'function');
  assert.equal(amdCalls.length, 0, 'the QR library registered with the page AMD loader');
  for (const leaked of ['qrcode', 'KeyriHpke', 'KEYRI_CSS', 'exports']) {
    assert.equal(leaked in sandbox, false, `${leaked} leaked into the page`);
  }
});
