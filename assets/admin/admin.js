// The dashboard's behaviour in the browser: copy buttons and the live count of
// open sessions. A file, because the pages' Content-Security-Policy allows no
// inline script.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  for (const button of document.querySelectorAll('button.copy')) {
    button.addEventListener('click', async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = 'Copied';
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = 'Selected: press Ctrl+C';
      }
    });
  }

  const live = document.getElementById('open-sessions');
  if (live && live.dataset.live) {
    const refresh = async () => {
      try {
        const response = await fetch(live.dataset.live, { credentials: 'same-origin' });
        if (response.ok) live.textContent = String((await response.json()).openSessions);
      } catch (_) {
        // The next tick tries again.
      }
    };
    setInterval(refresh, 3000);
  }
});
