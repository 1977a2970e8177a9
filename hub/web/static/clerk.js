// The clerks' panel: keyboard shortcuts, and keeping focus, the transfer choice and
// the ticked e-services when the live part is swapped in. The panel works without
// this script.
(function () {
  "use strict";
  var root = document.querySelector(".clerk[data-live]");
  if (!root) {
    return;
  }
  var sent = false; // one action per page: the form navigates
  var focused = null; // what had the focus, to give it back after a live update
  var picked = null; // the transfer target the clerk chose
  var ticked = {}; // the e-services ticked (true) or unticked (false), by name…
  var tickedFor = null; // …for this ticket number

  function ticket() {
    var section = root.querySelector("[data-ticket]");
    return section ? section.getAttribute("data-ticket") : "";
  }

  function control(key) {
    var node = root.querySelector('[data-key="' + key + '"]');
    return node && !node.disabled ? node : null;
  }

  function press(button) {
    if (sent) {
      return;
    }
    sent = true;
    button.click();
  }

  function describe(node) {
    if (node.id) {
      return "#" + node.id;
    }
    if (node.hasAttribute("data-key")) {
      return '[data-key="' + node.getAttribute("data-key") + '"]';
    }
    return node.hasAttribute("data-transfer") ? "[data-transfer]" : null;
  }

  root.addEventListener("focusin", function (event) {
    focused = describe(event.target);
  });
  root.addEventListener("change", function (event) {
    if (event.target.id === "transfer-service") {
      picked = event.target.value;
    } else if (event.target.name === "eservices") {
      if (tickedFor !== ticket()) {
        ticked = {};
        tickedFor = ticket();
      }
      ticked[event.target.value] = event.target.checked;
    }
  });
  root.addEventListener("live:updated", function () {
    var select = root.querySelector("#transfer-service");
    if (select && picked && select.querySelector('option[value="' + picked + '"]')) {
      select.value = picked;
    }
    if (tickedFor === ticket()) {
      root.querySelectorAll('input[name="eservices"]').forEach(function (box) {
        if (Object.prototype.hasOwnProperty.call(ticked, box.value)) {
          box.checked = ticked[box.value];
        }
      });
    }
    if (focused && (document.activeElement === document.body || !document.activeElement)) {
      var node = root.querySelector(focused);
      if (node && !node.disabled) {
        node.focus();
      }
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) {
      return;
    }
    var target = event.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    if (tag === "select" && target.id === "transfer-service") {
      if (event.key === "Enter") {
        var transfer = root.querySelector("[data-transfer]");
        if (transfer && !transfer.disabled) {
          event.preventDefault();
          press(transfer);
        }
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable) {
      return;
    }
    var key = (event.key || "").toLowerCase();
    if (key === "t") {
      var select = control("t");
      if (select) {
        event.preventDefault();
        select.focus();
      }
      return;
    }
    if ("nrxdp".indexOf(key) === -1 || key.length !== 1) {
      return;
    }
    var button = control(key);
    if (button) {
      event.preventDefault();
      press(button);
    }
  });
})();
