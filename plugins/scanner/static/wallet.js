// The buyer's ticket page: installs the service worker and keeps this page and what it loaded in its
// cache, so that the tickets open at the door without a network. Runs no inline script (strict CSP).
"use strict";

(() => {
  const CACHE = "bilten-tickets-v1";
  const config = JSON.parse(document.getElementById("wallet-config").textContent);
  const status = document.getElementById("wallet-offline");
  if (!("serviceWorker" in navigator) || !("caches" in window)) return;

  // The first visit is not controlled by the worker yet: keep the page and its files now.
  async function keepThisPage() {
    const cache = await caches.open(CACHE);
    const files = performance.getEntriesByType("resource")
      .map((entry) => entry.name)
      .filter((url) => new URL(url).origin === location.origin);
    await cache.add(location.href);
    // A file that fails to load now is fetched (and kept) again by the worker on the next visit.
    await Promise.all([...new Set(files)].map((url) => cache.add(url).catch(() => null)));
    if (status) status.textContent = status.dataset.saved;
  }

  navigator.serviceWorker.register(config.serviceWorker, { scope: config.scope })
    .then(() => navigator.serviceWorker.ready)
    .then(() => (navigator.onLine ? keepThisPage() : null))
    .catch(() => {
      // Without a worker the page still works online; there is nothing to tell the buyer.
    });
})();
