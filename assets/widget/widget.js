// <keyri-login>: the browser side of Keyri QR login.
//
//   <script src="https://keyri.example/widget/keyri.js"></script>
//   <keyri-login app-key="app_..."></keyri-login>
//
// Each QR code is backed by a fresh P-256 key pair whose private half never
// leaves this page (WebCrypto, non-extractable), and by its own WebSocket to
// the Keyri server. The QR code carries the key's fingerprint, the phone seals
// the login payload to that key with HPKE, and the server only relays the
// sealed bytes. See the wire contract for the message formats.
//
// The bundle served at /widget/keyri.js is, inside one function scope:
// KEYRI_CSS (this widget's stylesheet as a string), the vendored
// qrcode-generator, hpke.js (KeyriHpke) and this file.

// Declared (and hoisted) in the bundle's function scope so that the UMD footer
// of the vendored QR library sees neither an AMD loader nor a CommonJS
// `exports` of the host page, and never registers itself with them.
// eslint-disable-next-line no-var, no-unused-vars
var define, exports;

// The script element is only known while the bundle first runs.
const KEYRI_SCRIPT_SRC = (() => {
  try {
    const el = document.currentScript;
    return el && el.src ? el.src : null;
  } catch {
    return null;
  }
})();

const KeyriLogin = (() => {
  'use strict';

  const TEXT = Object.freeze({
    preparing: 'Preparing a sign-in code\u2026',
    scan: 'Scan with the app to sign in',
    scanned: 'Confirm on your phone',
    confirmed: 'Approved on your phone',
    denied: 'Login declined on the phone',
    expired: 'The code expired. A new one appears when you return to this page.',
    newCode: 'New code',
    tryAgain: 'Try again',
    unsupported:
      'This login widget needs a secure connection: open the page over https '
      + '(or on localhost).',
    noAppKey: 'The login widget is missing its app-key attribute.',
    badServer: 'The login widget has an invalid server address.',
    connectionLost: 'Connection lost',
    cannotConnect: 'Could not connect to the login server',
    cannotConnectHint:
      'Check the server address, the app key and that this site is an allowed origin.',
    timeout: 'The login server did not answer in time',
    badMessage: 'The login server sent a message the widget does not understand.',
    decryptFailed: 'The login response could not be decrypted.',
    notText: 'The login response is not valid UTF-8 text.',
    serverError: 'The login server reported an error',
    keyFailed: 'Could not create a key for this sign-in.',
    qrFailed: 'Could not draw the QR code.',
  });

  const STATES = new Set(['waiting', 'scanned', 'confirmed', 'denied', 'error', 'unsupported']);

  // QR drawing: 6 px per module and a 4-module quiet zone, black on white.
  const MODULE_PX = 6;
  const QUIET_MODULES = 4;
  // A session message must arrive this soon after the connection is started.
  const SESSION_TIMEOUT_MS = 15000;

  const B64URL = /^[A-Za-z0-9_-]+$/;

  let sheet = null;
  const styleSheet = () => {
    const css = typeof KEYRI_CSS === 'string' ? KEYRI_CSS : '';
    if (sheet === null && typeof CSSStyleSheet === 'function') {
      try {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(css);
      } catch {
        sheet = false;
      }
    }
    return { sheet: sheet || null, css };
  };

  const secureContextAvailable = () =>
    window.isSecureContext !== false && !!globalThis.crypto?.subtle;

  /** The server's base URL (with trailing slash) for a server attribute value. */
  const serverBase = (attr) => {
    let base;
    if (attr) {
      base = new URL(attr, document.baseURI);
      if (!base.pathname.endsWith('/')) base.pathname += '/';
    } else if (KEYRI_SCRIPT_SRC) {
      const src = new URL(KEYRI_SCRIPT_SRC);
      // Served as <server>/widget/keyri.js; keep a path prefix if there is one.
      base = src.pathname.endsWith('/widget/keyri.js') ? new URL('../', src) : new URL('/', src);
    } else {
      base = new URL('/', document.baseURI);
    }
    base.search = '';
    base.hash = '';
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new Error(`unsupported scheme ${base.protocol}`);
    }
    return base;
  };

  const socketUrl = (base, appKey) => {
    const url = new URL('v1/widget/ws', base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = `?appKey=${encodeURIComponent(appKey)}`;
    return url.href;
  };

  /** <scanUrl>?s=<sessionId>&k=<fingerprint>, keeping any fragment last. */
  const buildQrText = (scanUrl, sessionId, fp) => {
    const hashAt = scanUrl.indexOf('#');
    const head = hashAt < 0 ? scanUrl : scanUrl.slice(0, hashAt);
    const tail = hashAt < 0 ? '' : scanUrl.slice(hashAt);
    const sep = head.includes('?') ? '&' : '?';
    return `${head}${sep}s=${sessionId}&k=${fp}${tail}`;
  };

  const drawQr = (canvas, text) => {
    const qr = qrcode(0, 'M');
    qr.addData(text);
    qr.make();
    const count = qr.getModuleCount();
    const size = (count + 2 * QUIET_MODULES) * MODULE_PX;
    canvas.width = size;
    canvas.height = size;
    canvas.style.width = `${size}px`;
    const ctx = canvas.getContext('2d', { alpha: false });
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, size, size);
    ctx.fillStyle = '#000000';
    const offset = QUIET_MODULES * MODULE_PX;
    for (let row = 0; row < count; row++) {
      // One rectangle per horizontal run of dark modules.
      for (let col = 0; col < count;) {
        if (!qr.isDark(row, col)) {
          col++;
          continue;
        }
        const start = col;
        while (col < count && qr.isDark(row, col)) col++;
        ctx.fillRect(offset + start * MODULE_PX, offset + row * MODULE_PX,
          (col - start) * MODULE_PX, MODULE_PX);
      }
    }
  };

  const el = (tag, props = {}) => Object.assign(document.createElement(tag), props);

  class KeyriLoginElement extends HTMLElement {
    static get observedAttributes() {
      return ['app-key', 'server'];
    }

    // UI nodes in the shadow root.
    #ui;
    // Current connection: {ws, keys, fp, sessionId, opened, done}; null when idle.
    #conn = null;
    // Incremented by every (re)start and disconnect; stale async work checks it.
    #run = 0;
    #active = false;
    #state = null;
    #qrText = null;
    #timer = null;
    #renewWhenVisible = false;
    #payload;
    #resolvePayload;
    #visibilityListener = () => this.#onVisibility();

    constructor() {
      super();
      this.#payload = new Promise((resolve) => {
        this.#resolvePayload = resolve;
      });

      const root = this.attachShadow({ mode: 'open' });
      const { sheet: shared, css } = styleSheet();
      if (shared) root.adoptedStyleSheets = [shared];
      else root.append(el('style', { textContent: css }));

      const canvas = el('canvas', { hidden: true });
      canvas.setAttribute('part', 'qr');
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', 'QR code to sign in with the app');
      const spinner = el('div', { className: 'spinner' });
      const mark = el('div', { className: 'mark', hidden: true });
      mark.setAttribute('aria-hidden', 'true');
      const status = el('div', { className: 'status' });
      status.append(spinner, mark);
      const code = el('div', { className: 'code' });
      code.setAttribute('part', 'code');
      code.append(canvas, status);
      const caption = el('p', { className: 'caption' });
      caption.setAttribute('part', 'caption');
      caption.setAttribute('role', 'status');
      caption.setAttribute('aria-live', 'polite');
      const message = el('p', { className: 'message' });
      message.setAttribute('part', 'message');
      const button = el('button', { type: 'button', hidden: true });
      button.setAttribute('part', 'button');
      button.addEventListener('click', () => this.restart());
      const container = el('div', { className: 'keyri' });
      container.setAttribute('part', 'container');
      container.append(code, caption, message, button);
      root.append(container);
      this.#ui = { canvas, spinner, mark, status, caption, message, button };
    }

    /** Resolves with the detail of the first `keyri-payload` event. */
    get payload() {
      return this.#payload;
    }

    /** The text of the QR code on display, or null. */
    get qrText() {
      return this.#qrText;
    }

    /** waiting | scanned | confirmed | denied | error | unsupported (null before start). */
    get state() {
      return this.#state;
    }

    /** Drops the current code and connection and shows a fresh code. */
    restart() {
      if (this.isConnected) this.#start();
    }

    connectedCallback() {
      this.#active = true;
      document.addEventListener('visibilitychange', this.#visibilityListener);
      this.#start();
    }

    disconnectedCallback() {
      this.#active = false;
      this.#run++;
      document.removeEventListener('visibilitychange', this.#visibilityListener);
      this.#teardown();
      this.#renewWhenVisible = false;
    }

    attributeChangedCallback(_name, oldValue, newValue) {
      if (this.#active && oldValue !== newValue) this.#start();
    }

    // ---- connection lifecycle ----

    async #start() {
      const run = ++this.#run;
      this.#teardown();
      this.#renewWhenVisible = false;
      this.#qrText = null;

      if (!secureContextAvailable()) {
        this.#show('unsupported', { caption: TEXT.unsupported });
        return;
      }
      const appKey = (this.getAttribute('app-key') || '').trim();
      if (!appKey) {
        this.#fail(TEXT.noAppKey, '', false);
        return;
      }
      let url;
      try {
        url = socketUrl(serverBase(this.getAttribute('server')), appKey);
      } catch (e) {
        this.#fail(TEXT.badServer, e?.message, false);
        return;
      }

      this.#show('waiting', { caption: TEXT.preparing, spinner: true });

      let keys;
      let fp;
      try {
        keys = await KeyriHpke.generateKeyPair();
        fp = await KeyriHpke.fingerprint(keys.publicKeyRaw);
      } catch (e) {
        if (run === this.#run) this.#fail(TEXT.keyFailed, e?.message);
        return;
      }
      if (run !== this.#run) return;

      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        this.#fail(TEXT.cannotConnect, e?.message);
        return;
      }
      const conn = { ws, keys, fp, sessionId: null, opened: false, done: false };
      this.#conn = conn;
      this.#timer = setTimeout(() => {
        if (this.#conn === conn && !conn.sessionId) {
          conn.done = true;
          this.#fail(TEXT.timeout, TEXT.cannotConnectHint);
        }
      }, SESSION_TIMEOUT_MS);

      ws.addEventListener('open', () => {
        if (this.#conn !== conn) return;
        conn.opened = true;
        const publicKey = KeyriHpke.b64u.encode(keys.publicKeyRaw);
        ws.send(JSON.stringify({ type: 'hello', publicKey }));
      });
      ws.addEventListener('message', (event) => {
        if (this.#conn === conn && !conn.done) this.#onMessage(conn, event.data);
      });
      ws.addEventListener('close', () => {
        if (this.#conn !== conn || conn.done) return;
        conn.done = true;
        if (conn.opened) this.#fail(TEXT.connectionLost);
        else this.#fail(TEXT.cannotConnect, TEXT.cannotConnectHint);
      });
    }

    /** Closes the socket (if any) and forgets the key pair and timers. */
    #teardown() {
      clearTimeout(this.#timer);
      this.#timer = null;
      const conn = this.#conn;
      this.#conn = null;
      if (conn) {
        conn.done = true;
        conn.keys = null;
        if (conn.ws.readyState === WebSocket.CONNECTING || conn.ws.readyState === WebSocket.OPEN) {
          try {
            conn.ws.close(1000);
          } catch {
            // already closing
          }
        }
      }
    }

    #onMessage(conn, data) {
      if (typeof data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        msg = null;
      }
      if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
        conn.done = true;
        this.#fail(TEXT.badMessage);
        return;
      }
      switch (msg.type) {
        case 'session':
          this.#onSession(conn, msg);
          break;
        case 'scanned':
          if (conn.sessionId && this.#state === 'waiting') {
            this.#show('scanned', { caption: TEXT.scanned, spinner: true, qr: true });
          }
          break;
        case 'payload':
          conn.done = true;
          this.#onPayload(conn, msg);
          break;
        case 'denied':
          conn.done = true;
          this.#teardown();
          this.#qrText = null;
          this.#show('denied', { caption: TEXT.denied, mark: ['stop', '\u2715'],
            button: TEXT.newCode });
          break;
        case 'expired':
          conn.done = true;
          this.#onExpired();
          break;
        case 'error': {
          conn.done = true;
          const text = typeof msg.message === 'string' && msg.message
            ? msg.message
            : TEXT.serverError;
          const code = typeof msg.error === 'string' ? msg.error : '';
          this.#fail(text, code && code !== text ? `(${code})` : '');
          break;
        }
        default:
          // Newer servers may send message types this version does not know.
          break;
      }
    }

    #onSession(conn, msg) {
      if (conn.sessionId) return; // one session per connection
      const { sessionId, scanUrl, expiresAt } = msg;
      if (typeof sessionId !== 'string' || !B64URL.test(sessionId)
        || typeof scanUrl !== 'string' || !scanUrl) {
        conn.done = true;
        this.#fail(TEXT.badMessage);
        return;
      }
      clearTimeout(this.#timer);
      this.#timer = null;
      conn.sessionId = sessionId;
      const qrText = buildQrText(scanUrl, sessionId, conn.fp);
      try {
        drawQr(this.#ui.canvas, qrText);
      } catch (e) {
        conn.done = true;
        this.#fail(TEXT.qrFailed, e?.message ?? String(e));
        return;
      }
      this.#qrText = qrText;
      this.#show('waiting', { caption: TEXT.scan, qr: true });
      this.#emit('keyri-session', {
        sessionId,
        qrText,
        expiresAt: typeof expiresAt === 'number' ? expiresAt : null,
      });
    }

    async #onPayload(conn, msg) {
      const { keys, sessionId } = conn;
      if (!sessionId || !keys || typeof msg.sealed !== 'string') {
        this.#fail(TEXT.badMessage);
        return;
      }
      let bytes;
      try {
        bytes = await KeyriHpke.open(keys.privateKey, keys.publicKeyRaw,
          KeyriHpke.payloadInfo(sessionId), KeyriHpke.b64u.decode(msg.sealed));
      } catch (e) {
        if (this.#conn === conn) this.#fail(TEXT.decryptFailed, e?.message);
        return;
      }
      if (this.#conn !== conn) return; // restarted or removed meanwhile
      this.#teardown();
      this.#qrText = null;
      let payload;
      try {
        payload = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        this.#fail(TEXT.notText);
        return;
      }
      const detail = Object.freeze({ payload, bytes, sessionId });
      this.#resolvePayload(detail);
      this.#show('confirmed', { caption: TEXT.confirmed, mark: ['ok', '\u2713'] });
      this.#emit('keyri-payload', detail);
    }

    #onExpired() {
      this.#teardown();
      this.#qrText = null;
      if (document.visibilityState === 'hidden') {
        // Nobody is looking: mint the next code when the page is shown again.
        this.#renewWhenVisible = true;
        this.#show('waiting', { caption: TEXT.expired, mark: ['info', '\u21bb'] });
        return;
      }
      this.#start();
    }

    #onVisibility() {
      if (this.#renewWhenVisible && document.visibilityState === 'visible') this.#start();
    }

    // ---- view ----

    /** Error state; `retry` offers the "Try again" button (not for configuration errors). */
    #fail(caption, detail, retry = true) {
      this.#teardown();
      this.#qrText = null;
      this.#show('error', {
        caption,
        message: detail || '',
        mark: ['stop', '!'],
        button: retry ? TEXT.tryAgain : '',
      });
    }

    /**
     * Renders a state. opts: caption, message, qr (keep the code visible),
     * spinner, mark ([kind, glyph]), button (label).
     */
    #show(state, opts) {
      const ui = this.#ui;
      ui.canvas.hidden = !opts.qr;
      if (!opts.qr) {
        ui.canvas.width = 0;
        ui.canvas.height = 0;
      }
      ui.spinner.hidden = !opts.spinner;
      ui.mark.hidden = !opts.mark;
      if (opts.mark) {
        ui.mark.dataset.kind = opts.mark[0];
        ui.mark.textContent = opts.mark[1];
      }
      ui.status.hidden = !opts.spinner && !opts.mark;
      ui.caption.textContent = opts.caption || '';
      ui.message.textContent = opts.message || '';
      ui.button.hidden = !opts.button;
      ui.button.textContent = opts.button || '';
      this.#setState(state);
    }

    #setState(state) {
      if (!STATES.has(state) || state === this.#state) return;
      this.#state = state;
      this.setAttribute('state', state);
      this.#emit('keyri-state', { state });
    }

    #emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
    }
  }

  return KeyriLoginElement;
})();

if (!window.Keyri) {
  window.Keyri = Object.freeze({ hpke: KeyriHpke, version: '1' });
}
if (!customElements.get('keyri-login')) {
  customElements.define('keyri-login', KeyriLogin);
}
