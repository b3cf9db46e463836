/* The idle warning (_session_timeout.html): shortly before the session would idle out the
   warning shows; "Stay signed in" posts to /session/refresh (with the page's CSRF token) and
   the count starts again. Once the time is up it says that a form sent now is kept until
   the person signs in again. The queue's own refreshes do not count as activity. */
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  var tokenField = document.querySelector('form[action="/sign-out"] input[name="csrf_token"]');
  if (!box || !tokenField || !window.fetch) { return; }
  var idle = Number(box.getAttribute("data-idle-seconds")) || 1800;
  var lead = Number(box.getAttribute("data-warning-seconds")) || 180;
  var title = document.getElementById("session-warning-title");
  var text = document.getElementById("session-warning-text");
  var button = document.getElementById("stay-signed-in");
  var ended = document.getElementById("session-ended");
  var warnTimer = null, endTimer = null;

  function minutes(seconds) {
    var m = Math.max(1, Math.round(seconds / 60));
    return m === 1 ? "1 minute" : m + " minutes";
  }

  function warn() {
    title.textContent = "You will be signed out soon";
    text.textContent = "You will be signed out in about " + minutes(Math.min(lead, idle)) +
      " because nothing has been done on this page.";
    button.hidden = false; ended.hidden = true; box.hidden = false;
  }

  function end() {
    title.textContent = "You have been signed out";
    text.textContent = "You were signed out because nothing was done on this page for " +
      minutes(idle) + ".";
    button.hidden = true; ended.hidden = false; box.hidden = false;
  }

  function schedule(seconds) {
    clearTimeout(warnTimer); clearTimeout(endTimer);
    warnTimer = setTimeout(warn, Math.max(0, seconds - lead) * 1000);
    endTimer = setTimeout(end, seconds * 1000);
  }

  button.addEventListener("click", function () {
    var body = new URLSearchParams();
    body.append("csrf_token", tokenField.value);
    fetch("/session/refresh", {
      method: "POST", body: body, credentials: "same-origin", cache: "no-store",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      if (!answer || !answer.signed_in) { end(); return; }
      box.hidden = true;
      box.setAttribute("data-refreshed", String(Date.now()));
      schedule(answer.idle_seconds || idle);
    }).catch(function () { /* offline: the warning stays, the button can be tried again */ });
  });
  schedule(idle);
})();
