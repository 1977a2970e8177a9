// Notices on this browser: register the service worker, subscribe to web push with the
// hub's VAPID key and hand the subscription to the hub. Without it, e-mail and SMS work.
(function () {
  "use strict";
  var button = document.querySelector("[data-push]");
  var status = document.querySelector("[data-push-status]");
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!button || !("serviceWorker" in navigator) || !window.PushManager || !window.fetch) {
    return;
  }
  button.hidden = false;

  function key(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  button.addEventListener("click", function () {
    Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") {
          throw new Error(permission);
        }
        return navigator.serviceWorker.register(button.getAttribute("data-sw"));
      })
      .then(function () {
        return navigator.serviceWorker.ready;
      })
      .then(function (registration) {
        return registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: key(button.getAttribute("data-key")),
        });
      })
      .then(function (subscription) {
        return fetch(button.getAttribute("data-push"), {
          method: "POST",
          headers: {"Content-Type": "application/json", "X-CSRFToken": meta ? meta.content : ""},
          body: JSON.stringify(subscription.toJSON()),
          credentials: "same-origin",
        });
      })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error(String(answer.status));
        }
        button.hidden = true;
        say(button.getAttribute("data-done"));
      })
      .catch(function () {
        say(button.getAttribute("data-failed"));
      });
  });
})();
