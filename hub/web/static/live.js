// Live pages: listen to the hub's event stream and swap in the page's fresh fragment.
// The page works without this script (a <noscript> refresh keeps it current).
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root || !root.getAttribute("data-live") || !window.EventSource || !window.fetch) {
    return;
  }
  var alertsOn = false;
  var button = document.querySelector("[data-alerts]");
  var audio = null;

  function state() {
    var node = root.querySelector("[data-state]");
    return node ? node.getAttribute("data-state") : null;
  }

  function beep() {
    if (!audio) {
      return;
    }
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.3;
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.6);
  }

  function alertCalled() {
    if (!alertsOn) {
      return;
    }
    if (navigator.vibrate) {
      navigator.vibrate([300, 150, 300, 150, 600]);
    }
    beep();
  }

  if (button && (window.AudioContext || navigator.vibrate)) {
    button.hidden = false;
    button.addEventListener("click", function () {
      alertsOn = true;
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx && !audio) {
        audio = new Ctx();
      }
      button.textContent = root.getAttribute("data-alerts-on") || button.textContent;
      button.disabled = true;
    });
  }

  // Put the fresh fragment in. A top-level part with a data-key that is the same as
  // before stays as it is, so its running animation (a new call blinking) goes on.
  function swap(html) {
    var next = document.createElement("div");
    next.innerHTML = html;
    var olds = root.children;
    var news = Array.prototype.slice.call(next.children);
    if (olds.length !== news.length) {
      root.innerHTML = html;
      return;
    }
    for (var i = news.length - 1; i >= 0; i--) {
      var old = olds[i];
      var key = news[i].getAttribute("data-key");
      if (key === null || key !== old.getAttribute("data-key")) {
        root.replaceChild(news[i], old);
      }
    }
  }

  var fragment = root.getAttribute("data-fragment");
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(fragment, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          var before = state();
          swap(html);
          var after = state();
          if (after === "called" && before !== "called") {
            alertCalled();
          }
          var updated = document.createEvent("Event");
          updated.initEvent("live:updated", false, false);
          root.dispatchEvent(updated);
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var source = new EventSource(root.getAttribute("data-live"));
  source.addEventListener("version", function () {
    // The first event says the stream is open: refresh once, in case the page is older.
    root.setAttribute("data-stream", "open");
    refresh();
  });
  source.addEventListener("error", function () {
    root.setAttribute("data-stream", "reconnecting");
  });
})();
