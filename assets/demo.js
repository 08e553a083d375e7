// Script of the /demo page: mirrors what <keyri-login id="login"> reports into
// #state, #qr-text and #payload. Text only; nothing received is parsed as HTML.

(() => {
  'use strict';

  const init = () => {
    const login = document.getElementById('login');
    const stateOut = document.getElementById('state');
    const qrOut = document.getElementById('qr-text');
    const payloadOut = document.getElementById('payload');
    if (!login) return;

    const put = (node, value) => {
      if (node) node.textContent = value ?? '';
    };

    login.addEventListener('keyri-state', (event) => {
      put(stateOut, event.detail?.state);
    });
    login.addEventListener('keyri-session', (event) => {
      put(qrOut, event.detail?.qrText);
      put(payloadOut, '');
    });
    login.addEventListener('keyri-payload', (event) => {
      put(payloadOut, event.detail?.payload);
    });

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
