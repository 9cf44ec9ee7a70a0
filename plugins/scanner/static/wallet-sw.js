// The buyer's ticket pages' service worker (served as /tickets/wallet-sw.js, scope /tickets/): keeps each
// ticket page once opened, with its files, so that the codes show at the door without a network.
"use strict";

const CACHE = "bilten-tickets-v1";

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(
        names.filter((name) => name.startsWith("bilten-tickets-") && name !== CACHE).map((name) => caches.delete(name)),
      ))
      .then(() => self.clients.claim()),
  );
});

// The network first, so that a refund or a new code shows as soon as there is a network; the kept
// copy when there is none. A page is kept by its path: any valid link to the order opens it offline.
async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreSearch: request.mode === "navigate", ignoreVary: true });
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.endsWith(".pkpass") || url.pathname.startsWith("/api/")) return;
  event.respondWith(networkFirst(event.request));
});
