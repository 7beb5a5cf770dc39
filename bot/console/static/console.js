/* sopbot console: small enhancements; every page works without this file. */
(function () {
  "use strict";

  // The dashboard's charts are made in the background: fetch them once they are ready.
  function pollCharts() {
    var box = document.getElementById("charts");
    if (!box || box.getAttribute("data-pending") !== "1") return;
    var tries = 0;
    function attempt() {
      tries += 1;
      fetch(box.getAttribute("data-charts-url"), { credentials: "same-origin" })
        .then(function (answer) {
          if (answer.redirected) {  // the session ended: the answer is the login page
            window.location.reload();
            return;
          }
          if (answer.status === 200) {
            return answer.text().then(function (html) {
              box.innerHTML = html;
              box.setAttribute("data-pending", "0");
            });
          }
          if (tries < 60) window.setTimeout(attempt, 2000);
        })
        .catch(function () {
          if (tries < 60) window.setTimeout(attempt, 5000);
        });
    }
    window.setTimeout(attempt, 1500);
  }

  // A form sent once: its button is disabled until the next page arrives (no double import).
  function oneSubmitEach() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
      var buttons = form.querySelectorAll("button[type=submit]");
      window.setTimeout(function () {
        for (var i = 0; i < buttons.length; i += 1) buttons[i].disabled = true;
      }, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    pollCharts();
    oneSubmitEach();
  });
})();
