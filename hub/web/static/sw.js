// The hub's service worker: shows a push notice ("your turn is near", "go to counter X")
// and opens the my-ticket page when it is tapped.
"use strict";

self.addEventListener("push", function (event) {
  var notice = {};
  try {
    notice = event.data ? event.data.json() : {};
  } catch (error) {
    notice = {title: event.data ? event.data.text() : ""};
  }
  event.waitUntil(
    self.registration.showNotification(notice.title || "", {
      body: notice.body || "",
      data: {url: notice.url || "/"},
      requireInteraction: true,
      vibrate: [300, 100, 300],
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(self.clients.openWindow(url));
});
