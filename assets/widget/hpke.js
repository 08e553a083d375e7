// HPKE (RFC 9180) for the Keyri login widget, on WebCrypto only.
//
// Base mode, single-shot, one suite:
//   DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM
//   (kem 0x0010, kdf 0x0001, aead 0x0002), empty aad.
// sealed = enc (65-byte uncompressed P-256 point) || AES-GCM ciphertext || 16-byte tag.
// Only the first message of a context is ever produced or opened, so the AEAD
// nonce is base_nonce itself (sequence number 0).
//
// This file defines a single top-level binding, `KeyriHpke`, and is written to
// be concatenated into the widget bundle as well as loaded on its own.

const KeyriHpke = (() => {
  'use strict';

  const subtle = globalThis.crypto?.subtle;
  const utf8 = new TextEncoder();

  const KEM_ID = 0x0010;
  const KDF_ID = 0x0001;
  const AEAD_ID = 0x0002;
  const N_SECRET = 32; // KEM shared secret length (SHA-256 output)
  const N_ENC = 65; // uncompressed P-256 point
  const N_SK = 32; // P-256 scalar
  const N_K = 32; // AES-256 key
  const N_N = 12; // AES-GCM nonce
  const N_T = 16; // AES-GCM tag
  const N_H = 32; // SHA-256 output
  const MODE_BASE = 0x00;

  const EC = Object.freeze({ name: 'ECDH', namedCurve: 'P-256' });

  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };

  const i2osp2 = (n) => Uint8Array.of((n >> 8) & 0xff, n & 0xff);

  const SUITE_KEM = concat(utf8.encode('KEM'), i2osp2(KEM_ID));
  const SUITE_HPKE = concat(
    utf8.encode('HPKE'), i2osp2(KEM_ID), i2osp2(KDF_ID), i2osp2(AEAD_ID));
  const HPKE_V1 = utf8.encode('HPKE-v1');
  const EMPTY = new Uint8Array(0);
  // HMAC pads its key with zeros to the block size, so the all-zero key of
  // hash length is the same key as the empty salt that RFC 5869 specifies.
  // WebCrypto refuses zero-length HMAC keys, hence this spelling.
  const ZERO_SALT = new Uint8Array(N_H);

  /** Copies any BufferSource into a fresh Uint8Array; rejects anything else. */
  const bytes = (value, what) => {
    if (ArrayBuffer.isView(value)) {
      return new Uint8Array(value.buffer.slice(
        value.byteOffset, value.byteOffset + value.byteLength));
    }
    if (Object.prototype.toString.call(value) === '[object ArrayBuffer]') {
      return new Uint8Array(value.slice(0));
    }
    throw new TypeError(`HPKE: ${what} must be a Uint8Array`);
  };

  const needSubtle = () => {
    if (!subtle) {
      throw new Error(
        'HPKE: WebCrypto is unavailable (it needs a secure context: https or localhost)');
    }
  };

  const checkPoint = (point, what) => {
    if (point.length !== N_ENC || point[0] !== 0x04) {
      throw new Error(`HPKE: ${what} must be a 65-byte uncompressed P-256 point`);
    }
  };

  // ---- HKDF-SHA256 (RFC 5869) on WebCrypto HMAC ----

  const hmac = async (key, data) => {
    const k = await subtle.importKey(
      'raw', key.length ? key : ZERO_SALT, { name: 'HMAC', hash: 'SHA-256' },
      false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, data));
  };

  const extract = (salt, ikm) => hmac(salt.length ? salt : ZERO_SALT, ikm);

  const expand = async (prk, info, length) => {
    if (length > 255 * N_H) throw new Error('HPKE: HKDF output too long');
    const out = new Uint8Array(length);
    let t = EMPTY;
    for (let i = 1, at = 0; at < length; i++) {
      t = await hmac(prk, concat(t, info, Uint8Array.of(i)));
      out.set(t.subarray(0, Math.min(t.length, length - at)), at);
      at += t.length;
    }
    return out;
  };

  const labeledExtract = (suite, salt, label, ikm) =>
    extract(salt, concat(HPKE_V1, suite, utf8.encode(label), ikm));

  const labeledExpand = (suite, prk, label, info, length) =>
    expand(prk, concat(i2osp2(length), HPKE_V1, suite, utf8.encode(label), info), length);

  // ---- DHKEM(P-256, HKDF-SHA256) ----

  const importPublic = async (raw, what) => {
    checkPoint(raw, what);
    try {
      return await subtle.importKey('raw', raw, EC, true, []);
    } catch {
      throw new Error(`HPKE: ${what} is not a valid P-256 point`);
    }
  };

  const dh = async (privateKey, publicKey) =>
    new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: publicKey }, privateKey, 256));

  const extractAndExpand = async (dhBytes, kemContext) => {
    const prk = await labeledExtract(SUITE_KEM, EMPTY, 'eae_prk', dhBytes);
    return labeledExpand(SUITE_KEM, prk, 'shared_secret', kemContext, N_SECRET);
  };

  // ---- key schedule, base mode ----

  const keySchedule = async (sharedSecret, info) => {
    const pskIdHash = await labeledExtract(SUITE_HPKE, EMPTY, 'psk_id_hash', EMPTY);
    const infoHash = await labeledExtract(SUITE_HPKE, EMPTY, 'info_hash', info);
    const context = concat(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
    const secret = await labeledExtract(SUITE_HPKE, sharedSecret, 'secret', EMPTY);
    const keyBytes = await labeledExpand(SUITE_HPKE, secret, 'key', context, N_K);
    const nonce = await labeledExpand(SUITE_HPKE, secret, 'base_nonce', context, N_N);
    const key = await subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
    keyBytes.fill(0);
    secret.fill(0);
    return { key, nonce };
  };

  // ---- public API ----

  /**
   * Opens a sealed payload addressed to (privateKey, publicKeyRaw).
   * @param {CryptoKey} privateKey ECDH P-256 private key
   * @param {Uint8Array} publicKeyRaw the matching 65-byte public point
   * @param {Uint8Array} info HPKE info
   * @param {Uint8Array} sealed enc || ciphertext || tag
   * @returns {Promise<Uint8Array>} the plaintext
   */
  const open = async (privateKey, publicKeyRaw, info, sealed) => {
    needSubtle();
    const pkR = bytes(publicKeyRaw, 'publicKeyRaw');
    const inf = bytes(info, 'info');
    const data = bytes(sealed, 'sealed');
    checkPoint(pkR, 'recipient public key');
    if (data.length < N_ENC + N_T) {
      throw new Error(
        `HPKE: sealed payload is too short (${data.length} bytes, need at least ${N_ENC + N_T})`);
    }
    const enc = data.subarray(0, N_ENC);
    const pkE = await importPublic(enc, 'enc (ephemeral key)');
    let shared;
    try {
      const dhBytes = await dh(privateKey, pkE);
      shared = await extractAndExpand(dhBytes, concat(enc, pkR));
      dhBytes.fill(0);
    } catch (e) {
      throw new Error(`HPKE: key agreement failed (${e?.message ?? e})`);
    }
    const { key, nonce } = await keySchedule(shared, inf);
    shared.fill(0);
    try {
      const pt = await subtle.decrypt({ name: 'AES-GCM', iv: nonce }, key, data.subarray(N_ENC));
      return new Uint8Array(pt);
    } catch {
      throw new Error(
        'HPKE: cannot open the sealed payload (authentication failed: wrong key, wrong info '
        + 'or corrupted data)');
    }
  };

  /**
   * Seals plaintext to a recipient public key with a fresh ephemeral key.
   * @param {Uint8Array} publicKeyRaw 65-byte uncompressed P-256 point
   * @param {Uint8Array} info HPKE info
   * @param {Uint8Array} plaintext
   * @returns {Promise<Uint8Array>} enc || ciphertext || tag
   */
  const seal = async (publicKeyRaw, info, plaintext) => {
    needSubtle();
    const pkR = bytes(publicKeyRaw, 'publicKeyRaw');
    const inf = bytes(info, 'info');
    const pt = bytes(plaintext, 'plaintext');
    const recipient = await importPublic(pkR, 'recipient public key');
    const eph = await subtle.generateKey(EC, false, ['deriveBits']);
    const enc = new Uint8Array(await subtle.exportKey('raw', eph.publicKey));
    const dhBytes = await dh(eph.privateKey, recipient);
    const shared = await extractAndExpand(dhBytes, concat(enc, pkR));
    dhBytes.fill(0);
    const { key, nonce } = await keySchedule(shared, inf);
    shared.fill(0);
    const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce }, key, pt));
    return concat(enc, ct);
  };

  /**
   * Imports a known private key (32-byte big-endian scalar plus its public
   * point) as a non-extractable ECDH key. Meant for known-answer tests.
   * @returns {Promise<CryptoKey>}
   */
  const importPrivateKey = async (skRaw32, pkRaw65) => {
    needSubtle();
    const sk = bytes(skRaw32, 'skRaw32');
    const pk = bytes(pkRaw65, 'pkRaw65');
    if (sk.length !== N_SK) throw new Error('HPKE: private key must be 32 bytes');
    checkPoint(pk, 'public key');
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      d: b64u.encode(sk),
      x: b64u.encode(pk.subarray(1, 33)),
      y: b64u.encode(pk.subarray(33, 65)),
    };
    try {
      return await subtle.importKey('jwk', jwk, EC, false, ['deriveBits']);
    } catch (e) {
      throw new Error(`HPKE: invalid P-256 private key (${e?.message ?? e})`);
    }
  };

  /**
   * A fresh recipient key pair. The private key is not extractable.
   * @returns {Promise<{privateKey: CryptoKey, publicKeyRaw: Uint8Array}>}
   */
  const generateKeyPair = async () => {
    needSubtle();
    const pair = await subtle.generateKey(EC, false, ['deriveBits']);
    const publicKeyRaw = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
    return { privateKey: pair.privateKey, publicKeyRaw };
  };

  /**
   * Key fingerprint: base64url (no padding) of the first 16 bytes of
   * SHA-256 over the 65-byte point; always 22 characters.
   * @returns {Promise<string>}
   */
  const fingerprint = async (publicKeyRaw) => {
    needSubtle();
    const pk = bytes(publicKeyRaw, 'publicKeyRaw');
    checkPoint(pk, 'public key');
    const digest = new Uint8Array(await subtle.digest('SHA-256', pk));
    return b64u.encode(digest.subarray(0, 16));
  };

  /** UTF-8 of "keyri/v1/payload:" + sessionId, the info of every payload. */
  const payloadInfo = (sessionId) => {
    if (typeof sessionId !== 'string') throw new TypeError('HPKE: sessionId must be a string');
    return utf8.encode(`keyri/v1/payload:${sessionId}`);
  };

  // ---- base64url without padding (RFC 4648 section 5) ----

  const b64u = (() => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const VALUE = new Int16Array(128).fill(-1);
    for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

    const encode = (input) => {
      const b = bytes(input, 'input');
      let s = '';
      let i = 0;
      for (; i + 2 < b.length; i += 3) {
        const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
        s += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63]
          + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
      }
      if (b.length - i === 1) {
        const n = b[i] << 16;
        s += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
      } else if (b.length - i === 2) {
        const n = (b[i] << 16) | (b[i + 1] << 8);
        s += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
      }
      return s;
    };

    // Strict: only the 64 alphabet characters, no padding, no whitespace, and
    // the unused low bits of the last character must be zero (canonical form).
    const decode = (text) => {
      if (typeof text !== 'string') throw new TypeError('base64url: input must be a string');
      if (text.length % 4 === 1) throw new Error('base64url: invalid length');
      const out = new Uint8Array(Math.floor((text.length * 3) / 4));
      let acc = 0;
      let bits = 0;
      let at = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        const v = c < 128 ? VALUE[c] : -1;
        if (v < 0) throw new Error(`base64url: invalid character at position ${i}`);
        acc = ((acc << 6) | v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          out[at++] = (acc >> bits) & 0xff;
        }
      }
      if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) {
        throw new Error('base64url: non-zero trailing bits');
      }
      return out;
    };

    return Object.freeze({ encode, decode });
  })();

  return Object.freeze({
    open,
    seal,
    importPrivateKey,
    generateKeyPair,
    fingerprint,
    payloadInfo,
    b64u,
    suite: Object.freeze({ kem: KEM_ID, kdf: KDF_ID, aead: AEAD_ID }),
  });
})();
