// The lobby display page (/display): a chime at each new call, and the office's clock.
// live.js brings the fresh content; this script listens to its "live:updated" event.
// The chime is made here with the Web Audio API, like the TV's (two bell-like notes of
// fading sine partials), so no sound file is needed.
(function () {
  "use strict";
  var root = document.getElementById("lobby");
  if (!root) {
    return;
  }
  var body = document.body;

  // -- sound ------------------------------------------------------------------------
  var NOTES = [[0.0, 659.25], [0.42, 523.25]]; // [start s, fundamental Hz]: E5, then C5
  var PARTIALS = [[1.0, 1.0], [2.0, 0.35], [3.0, 0.12], [4.2, 0.05]]; // [multiple, amplitude]
  var DECAY_S = 0.38; // each note's fade (time constant)
  var NOTE_S = 1.3; // how long a note rings
  var ATTACK_S = 0.006; // a short fade-in, so a note starts without a click
  var PEAK = 0.5; // the loudest the chime gets, as a share of full scale

  var Ctx = window.AudioContext || window.webkitAudioContext;
  var audio = null;
  var button = document.querySelector("[data-sound]");
  var chimes = 0;

  function running() {
    return audio !== null && audio.state === "running";
  }

  // Browsers start sound only after a gesture on the page; smart TVs that allow
  // autoplay start it at once and the button never shows.
  function showSound() {
    body.setAttribute("data-sound", running() ? "on" : "off");
    if (button) {
      button.hidden = audio === null || running();
    }
  }

  if (Ctx) {
    try {
      audio = new Ctx();
    } catch (e) {
      audio = null;
    }
  }
  if (audio) {
    audio.onstatechange = showSound;
    if (button) {
      button.addEventListener("click", function () {
        var resumed = audio.resume();
        if (resumed && resumed.then) {
          resumed.then(showSound, showSound);
        }
      });
    }
  }
  showSound();

  function chime() {
    if (!running()) {
      return;
    }
    var norm = 0;
    PARTIALS.forEach(function (partial) {
      norm += partial[1];
    });
    var master = audio.createGain();
    master.gain.value = PEAK / norm;
    master.connect(audio.destination);
    var start = audio.currentTime + 0.05;
    NOTES.forEach(function (note) {
      var at = start + note[0];
      PARTIALS.forEach(function (partial) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = note[1] * partial[0];
        gain.gain.setValueAtTime(0, at);
        gain.gain.linearRampToValueAtTime(partial[1], at + ATTACK_S);
        gain.gain.setTargetAtTime(0, at + ATTACK_S, DECAY_S);
        osc.connect(gain);
        gain.connect(master);
        osc.start(at);
        osc.stop(at + NOTE_S);
      });
    });
    chimes += 1;
    body.setAttribute("data-chimes", String(chimes));
  }

  // A new call is a new key on the call's part (a recall too); the first one seen is
  // the page's own, already shown when the page opened.
  function callKey() {
    var node = root.querySelector("[data-call]");
    return node ? [node.getAttribute("data-key"), node.getAttribute("data-call")] : ["", ""];
  }
  var lastKey = callKey()[0];
  root.addEventListener("live:updated", function () {
    var now = callKey();
    if (now[0] !== lastKey) {
      lastKey = now[0];
      if (now[1]) {
        chime();
      }
    }
  });

  // -- clock ------------------------------------------------------------------------
  var clock = document.querySelector("[data-clock]");
  if (!clock) {
    return;
  }
  var zone = clock.getAttribute("data-timezone");
  var time = clock.querySelector("time");
  var date = clock.querySelector(".lobby-date");

  function two(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // The office's time (its time zone, from the hub), or the TV's own where the browser
  // knows no time zones.
  function officeNow(now) {
    try {
      var parts = {};
      new Intl.DateTimeFormat("en-GB", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit"
      })
        .formatToParts(now)
        .forEach(function (part) {
          parts[part.type] = part.value;
        });
      return [parts.hour, parts.minute, parts.day, parts.month, parts.year];
    } catch (e) {
      return [two(now.getHours()), two(now.getMinutes()), now.getDate(), now.getMonth() + 1, now.getFullYear()];
    }
  }

  function tick() {
    var at = officeNow(new Date());
    time.textContent = at[0] + ":" + at[1];
    date.textContent = at[2] + ". " + at[3] + ". " + at[4];
  }
  tick();
  window.setInterval(tick, 1000);
})();
