// The scanner app's service worker (served as /scan/sw.js, scope /scan): keeps the page, its
// scripts and the last event data so that the app opens and checks tickets without a network.
"use strict";

const CACHE = "bilten-scanner-v1";
// Precached on install; anything else the page loads from this site (the API aside) is kept as it
// is fetched.
const SHELL = [
  "/scan",
  "/static/bilten.css",
  "/scan/static/scanner.js",
  "/scan/static/scanner.css",
  "/scan/static/vendor/jsQR.js",
  "/scan/manifest.webmanifest",
  "/scan/static/icons/scanner-192.png",
  "/scan/static/icons/scanner-512.png",
];
const BUNDLE = /^\/api\/v1\/scanner\/events\/[^/]+\/bundle$/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

// The network first, so that a new version or new event data arrives as soon as there is a network;
// the cached copy when there is none. Only pages under /scan are controlled, so only their requests
// come here.
async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/api/") || BUNDLE.test(url.pathname)) {
    event.respondWith(networkFirst(event.request));
  }
});
