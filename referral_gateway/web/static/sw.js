/* The service worker: shows each Web Push alert (site, kind, count: never a name) and opens
   its link when tapped. Served at /sw.js so its scope is the whole app. It caches nothing:
   every page is behind sign-in and no-store. */
"use strict";
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  event.waitUntil(self.registration.showNotification(data.title || "Referral gateway", {
    body: data.body || "Something needs you on the queue.",
    icon: "/static/icon-192.png",
    badge: "/static/icon-192.png",
    tag: (data.site || "") + ":" + (data.kind || ""),
    renotify: true,
    data: { url: data.url || "/queue" }
  }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/queue";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
    for (var i = 0; i < list.length; i++) {
      if ("focus" in list[i] && "navigate" in list[i]) { return list[i].navigate(url).then(function (c) { return c && c.focus(); }); }
    }
    return self.clients.openWindow(url);
  }));
});
