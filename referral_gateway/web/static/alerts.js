/* The alerts page: turns Web Push on for this device (registers the service worker, asks
   for permission, subscribes with the gateway's VAPID key and posts the subscription), and
   keeps this browser's choices for the open queue (sound, notification) in localStorage. */
(function () {
  "use strict";
  var box = document.getElementById("push-device");
  var status = document.getElementById("device-status");

  function b64ToBytes(text) {
    var pad = "=".repeat((4 - text.length % 4) % 4);
    var raw = atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function turnOn() {
    Notification.requestPermission().then(function (answer) {
      if (answer !== "granted") { throw new Error("permission"); }
      return navigator.serviceWorker.register("/sw.js", { scope: "/" });
    }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      return reg.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: b64ToBytes(box.getAttribute("data-key"))
      });
    }).then(function (sub) {
      var json = sub.toJSON();
      var body = new URLSearchParams();
      body.set("csrf_token", box.getAttribute("data-csrf"));
      body.set("endpoint", json.endpoint);
      body.set("p256dh", json.keys.p256dh);
      body.set("auth", json.keys.auth);
      return fetch("/alerts/devices", { method: "POST", body: body, credentials: "same-origin" });
    }).then(function (response) {
      status.textContent = response.ok ? "Push alerts are on for this device."
        : "Push alerts could not be turned on. Reload the page and try again.";
    }).catch(function (e) {
      status.textContent = e && e.message === "permission"
        ? "This browser has notifications blocked for this site: allow them in its settings first."
        : "This browser cannot receive push alerts.";
    });
  }

  if (box && "serviceWorker" in navigator && "PushManager" in window && window.Notification) {
    box.hidden = false;
    document.getElementById("push-on").addEventListener("click", turnOn);
  }

  var options = document.querySelectorAll("[data-page-option]");
  Array.prototype.forEach.call(options, function (input) {
    var key = "rg-alert-" + input.getAttribute("data-page-option");
    input.checked = window.localStorage && localStorage.getItem(key) === "1";
    input.addEventListener("change", function () {
      localStorage.setItem(key, input.checked ? "1" : "0");
      if (input.checked && input.getAttribute("data-page-option") === "notify" && window.Notification) {
        Notification.requestPermission();
      }
    });
  });
})();
