// The portal's service worker, served as /my/sw.js for the scope /my/ (portal/views/pwa.py puts its CONFIG first).
//
// It does one thing: when a portal page cannot be loaded (no network), it shows a small offline page instead of the
// browser's error. It never keeps a portal page or an API answer: every /my/ page is personal (balance, name,
// requests) and is sent with Cache-Control: no-store. Only the offline page, fetched without cookies (so it holds
// nothing of anyone's session), and the few static files it needs are cached.
"use strict";

const CONFIG = self.ABONENT_PORTAL_SW || { version: "dev", offline: "/my/offline/", assets: [] };
const CACHE = `abonent-portal-${CONFIG.version}`;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const offline = await fetch(new Request(CONFIG.offline, { credentials: "omit", cache: "reload" }));
    if (offline.ok) {
      await cache.put(CONFIG.offline, offline);
    }
    await cache.addAll(CONFIG.assets);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("abonent-portal-") && key !== CACHE) {
        await caches.delete(key);
      }
    }
    await self.clients.claim();
  })());
});

const fromCache = async (request) => (await caches.match(request, { cacheName: CACHE })) || Response.error();

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") {
    return;
  }
  if (request.mode === "navigate") {
    // The network always first: the cached offline page only when there is none.
    event.respondWith(fetch(request).catch(() => fromCache(CONFIG.offline)));
    return;
  }
  const url = new URL(request.url);
  if (url.origin === self.location.origin && CONFIG.assets.includes(url.pathname + url.search)) {
    event.respondWith(fetch(request).catch(() => fromCache(request)));
  }
  // Anything else (pages' data, the API, other files) goes to the network untouched and is never stored.
});
