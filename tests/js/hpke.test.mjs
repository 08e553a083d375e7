// Known-answer and behaviour tests for assets/widget/hpke.js.
// Run with: node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const source = readFileSync(`${root}assets/widget/hpke.js`, 'utf8');
// eslint-disable-next-line no-new-func
const KeyriHpke = new Function(`${source}\nreturn KeyriHpke;`)();
const vectors = JSON.parse(
  readFileSync(`${root}tests/fixtures/hpke-p256-sha256-aes256gcm.json`, 'utf8'));

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const text = (s) => new TextEncoder().encode(s);

test('vector file has cases', () => {
  assert.ok(Array.isArray(vectors.cases));
  assert.ok(vectors.cases.length > 0);
});

test('opens every known-answer case', async () => {
  for (const [i, c] of vectors.cases.entries()) {
    const sk = await KeyriHpke.importPrivateKey(hex(c.skR), hex(c.pkR));
    const pt = await KeyriHpke.open(sk, hex(c.pkR), hex(c.info), hex(c.sealed));
    assert.equal(Buffer.from(pt).toString('hex'), c.plaintext, `case ${i}`);
  }
});

test('known-answer cases fail with a wrong info', async () => {
  for (const c of vectors.cases) {
    const sk = await KeyriHpke.importPrivateKey(hex(c.skR), hex(c.pkR));
    let info = hex(c.info);
    if (info.length) info[info.length - 1] ^= 1;
    else info = text('x');
    await assert.rejects(KeyriHpke.open(sk, hex(c.pkR), info, hex(c.sealed)),
      /authentication failed/);
  }
});

test('seal then open round-trips, with a non-extractable generated key', async () => {
  const { privateKey, publicKeyRaw } = await KeyriHpke.generateKeyPair();
  assert.equal(privateKey.extractable, false);
  assert.equal(privateKey.algorithm.name, 'ECDH');
  assert.equal(publicKeyRaw.length, 65);
  assert.equal(publicKeyRaw[0], 0x04);
  const info = KeyriHpke.payloadInfo('q1w2e3r4t5y6u7i8o9p0aZ');
  for (const size of [0, 1, 15, 16, 17, 1000, 40000]) {
    const msg = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
    const sealed = await KeyriHpke.seal(publicKeyRaw, info, msg);
    assert.equal(sealed.length, 65 + size + 16);
    assert.equal(sealed[0], 0x04);
    const opened = await KeyriHpke.open(privateKey, publicKeyRaw, info, sealed);
    assert.deepEqual(opened, msg);
  }
});

test('each seal uses a fresh ephemeral key', async () => {
  const { publicKeyRaw } = await KeyriHpke.generateKeyPair();
  const info = KeyriHpke.payloadInfo('s');
  const a = await KeyriHpke.seal(publicKeyRaw, info, text('same'));
  const b = await KeyriHpke.seal(publicKeyRaw, info, text('same'));
  assert.notDeepEqual(a.subarray(0, 65), b.subarray(0, 65));
});

test('round-trip of a UTF-8 text payload', async () => {
  const { privateKey, publicKeyRaw } = await KeyriHpke.generateKeyPair();
  const info = KeyriHpke.payloadInfo('AAAAAAAAAAAAAAAAAAAAAA');
  const msg = '{"token":"ä✓ 🔑"}';
  const sealed = await KeyriHpke.seal(publicKeyRaw, info, text(msg));
  const opened = await KeyriHpke.open(privateKey, publicKeyRaw, info, sealed);
  assert.equal(new TextDecoder().decode(opened), msg);
});

test('rejects tampering, truncation, wrong info and wrong key', async () => {
  const { privateKey, publicKeyRaw } = await KeyriHpke.generateKeyPair();
  const info = KeyriHpke.payloadInfo('session-a');
  const sealed = await KeyriHpke.seal(publicKeyRaw, info, text('secret payload'));

  for (const at of [65, 70, sealed.length - 17, sealed.length - 1]) {
    const flipped = sealed.slice();
    flipped[at] ^= 0x01;
    await assert.rejects(KeyriHpke.open(privateKey, publicKeyRaw, info, flipped),
      /authentication failed/, `flip at ${at}`);
  }

  // A flipped bit in enc usually leaves the curve; either way it must fail.
  const badEnc = sealed.slice();
  badEnc[10] ^= 0x01;
  await assert.rejects(KeyriHpke.open(privateKey, publicKeyRaw, info, badEnc), /HPKE:/);

  await assert.rejects(
    KeyriHpke.open(privateKey, publicKeyRaw, info, sealed.subarray(0, sealed.length - 1)),
    /authentication failed/);
  await assert.rejects(
    KeyriHpke.open(privateKey, publicKeyRaw, info, sealed.subarray(0, 65 + 15)), /too short/);
  await assert.rejects(KeyriHpke.open(privateKey, publicKeyRaw, info, new Uint8Array(0)),
    /too short/);

  await assert.rejects(
    KeyriHpke.open(privateKey, publicKeyRaw, KeyriHpke.payloadInfo('session-b'), sealed),
    /authentication failed/);

  const other = await KeyriHpke.generateKeyPair();
  await assert.rejects(KeyriHpke.open(other.privateKey, other.publicKeyRaw, info, sealed),
    /authentication failed/);
  // The right private key with a wrong recipient point changes the KEM context.
  await assert.rejects(KeyriHpke.open(privateKey, other.publicKeyRaw, info, sealed),
    /authentication failed/);
});

test('rejects malformed keys', async () => {
  const { privateKey, publicKeyRaw } = await KeyriHpke.generateKeyPair();
  const info = KeyriHpke.payloadInfo('x');
  await assert.rejects(KeyriHpke.seal(publicKeyRaw.subarray(0, 64), info, text('a')),
    /65-byte/);
  const offCurve = publicKeyRaw.slice();
  offCurve[64] ^= 0x01;
  await assert.rejects(KeyriHpke.seal(offCurve, info, text('a')), /not a valid P-256 point/);
  const sealed = await KeyriHpke.seal(publicKeyRaw, info, text('a'));
  const compressed = sealed.slice();
  compressed[0] = 0x02;
  await assert.rejects(KeyriHpke.open(privateKey, publicKeyRaw, info, compressed), /65-byte/);
  await assert.rejects(KeyriHpke.importPrivateKey(new Uint8Array(31), publicKeyRaw), /32 bytes/);
  await assert.rejects(KeyriHpke.seal('not bytes', info, text('a')), TypeError);
});

test('fingerprint is base64url of the first 16 bytes of SHA-256 of the point', async () => {
  const points = vectors.cases.map((c) => hex(c.pkR));
  points.push((await KeyriHpke.generateKeyPair()).publicKeyRaw);
  for (const pk of points) {
    const expected = createHash('sha256').update(pk).digest().subarray(0, 16)
      .toString('base64url');
    const fp = await KeyriHpke.fingerprint(pk);
    assert.equal(fp, expected);
    assert.equal(fp.length, 22);
    assert.match(fp, /^[A-Za-z0-9_-]{22}$/);
  }
  await assert.rejects(KeyriHpke.fingerprint(new Uint8Array(33)), /65-byte/);
});

test('payloadInfo is UTF-8 of the label and the session id', () => {
  const id = 'AAAAAAAAAAAAAAAAAAAAAA';
  assert.equal(Buffer.from(KeyriHpke.payloadInfo(id)).toString('utf8'),
    `keyri/v1/payload:${id}`);
  assert.equal(Buffer.from(KeyriHpke.payloadInfo(id)).toString('hex'), vectors.cases[0].info);
});

test('b64u matches Node base64url and is strict', () => {
  for (let n = 0; n < 70; n++) {
    const b = new Uint8Array(n).map((_, i) => (i * 37 + n * 11) & 0xff);
    const s = KeyriHpke.b64u.encode(b);
    assert.equal(s, Buffer.from(b).toString('base64url'));
    assert.deepEqual(KeyriHpke.b64u.decode(s), b);
  }
  assert.equal(KeyriHpke.b64u.encode(new Uint8Array([0xfb, 0xff])), '-_8');
  assert.deepEqual(KeyriHpke.b64u.decode('-_8'), new Uint8Array([0xfb, 0xff]));
  for (const bad of ['AA==', 'A', 'AA AA', 'AA+A', 'AA/A', 'AAé', 'AB', 'AAB', 'AA\n']) {
    assert.throws(() => KeyriHpke.b64u.decode(bad), Error, JSON.stringify(bad));
  }
  assert.throws(() => KeyriHpke.b64u.decode(42), TypeError);
});

test('the module is frozen and exposes the suite ids', () => {
  assert.ok(Object.isFrozen(KeyriHpke));
  assert.deepEqual({ ...KeyriHpke.suite }, { kem: 0x10, kdf: 0x1, aead: 0x2 });
});
