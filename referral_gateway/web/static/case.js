// The case page (referral.html). Loaded with `defer`; the page works without it.
(function () {
  "use strict";

  // 1. After a refused form the server redirects here with #error-summary: move the focus
  //    onto the summary so a screen reader reads it and the phone shows it (without this
  //    script the fragment still scrolls it into view).
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.scrollIntoView({ block: "start" });
  }

  // 2. The consent outcome's own fields appear when it is chosen (NHS.UK conditional
  //    radios). Without this script the server shows them after a first submit.
  var form = document.getElementById("consent-form");
  if (!form) {
    return;
  }
  var fieldsFor = form.querySelector("[data-fields-for]");
  var button = form.querySelector("[data-record-label]");
  var radios = form.querySelectorAll("input[name='outcome']");
  function show() {
    var chosen = "";
    for (var i = 0; i < radios.length; i++) {
      var radio = radios[i];
      var target = radio.getAttribute("aria-controls");
      var block = target ? document.getElementById(target) : null;
      if (block) {
        block.classList.toggle("nhsuk-radios__conditional--hidden", !radio.checked);
      }
      if (radio.checked) {
        chosen = radio.value;
      }
    }
    fieldsFor.value = chosen; // the fields of this outcome are on screen now
  }
  for (var j = 0; j < radios.length; j++) {
    radios[j].addEventListener("change", show);
  }
  if (button) {
    button.textContent = button.getAttribute("data-record-label");
  }
  show();
})();
