// Script of the /demo page: mirrors what <keyri-login id="login"> reports into
// #state, #qr-text and #payload. Text only; nothing received is parsed as HTML.

(() => {
  'use strict';

  const init = () => {
    const login = document.getElementById('login');
    const stateOut = document.getElementById('state');
    const qrOut = document.getElementById('qr-text');
    const payloadOut = document.getElementById('payload');
    const verifiedOut = document.getElementById('verified');
    if (!login) return;

    const put = (node, value) => {
      if (node) node.textContent = value ?? '';
    };

    login.addEventListener('keyri-state', (event) => {
      const state = event.detail?.state;
      put(stateOut, state);
      // A finished code cannot be used again: stop offering its text.
      if (state === 'denied' || state === 'error') put(qrOut, '');
    });
    login.addEventListener('keyri-session', (event) => {
      put(qrOut, event.detail?.qrText);
      put(payloadOut, '');
    });
    login.addEventListener('keyri-payload', (event) => {
      const payload = event.detail?.payload;
      put(payloadOut, payload);
      if (isSignedRequest(payload)) verify(payload);
    });

    // A signed login request goes to the demo's backend, which has the
    // server check it; anything else is shown as it came.
    const isSignedRequest = (text) => {
      try {
        return JSON.parse(text)?.type === 'keyri.auth.v1';
      } catch {
        return false;
      }
    };
    const verify = async (payload) => {
      verifiedOut.hidden = false;
      put(verifiedOut, 'Verifying…');
      try {
        const response = await fetch('/demo/verify', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
        });
        const answer = await response.json();
        put(verifiedOut, answer.valid
          ? `Signed in as ${answer.username}`
          : `Refused: ${answer.error} (${answer.message})`);
        verifiedOut.dataset.valid = String(Boolean(answer.valid));
      } catch (error) {
        put(verifiedOut, `Verification failed: ${error.message}`);
        verifiedOut.dataset.valid = 'false';
      }
    };

    // The widget may have started before this script ran.
    if (login.hasAttribute('state')) put(stateOut, login.getAttribute('state'));
    if (typeof login.qrText === 'string') put(qrOut, login.qrText);
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init, { once: true });
  } else {
    init();
  }
})();
