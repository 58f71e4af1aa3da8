// The console's only script: keeps the admin token for this tab (sessionStorage, never sent anywhere but
// this scheduler's API) and turns action buttons into API calls with it. Without a token the console is
// read-only: the action buttons are hidden.
(function () {
  "use strict";
  var KEY = "churn-admin-token";
  var flash = document.getElementById("flash");

  function token() {
    return window.sessionStorage.getItem(KEY) || "";
  }

  function show(message, ok) {
    flash.textContent = message;
    flash.className = ok ? "ok" : "bad";
  }

  function refresh() {
    document.body.classList.toggle("admin", token() !== "");
  }

  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = document.getElementById("token");
    if (input.value.trim() === "") {
      show("Paste the scheduler's ADMIN_TOKEN first.", false);
      return;
    }
    window.sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    refresh();
    show("Admin token set for this tab: actions are enabled.", true);
  });

  document.getElementById("forget").addEventListener("click", function () {
    window.sessionStorage.removeItem(KEY);
    refresh();
    show("Admin token forgotten: the console is read-only.", true);
  });

  document.querySelectorAll("button.action").forEach(function (button) {
    button.addEventListener("click", function () {
      var question = button.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        return;
      }
      var headers = { Authorization: "Bearer " + token() };
      var body = button.getAttribute("data-body");
      if (body) {
        headers["Content-Type"] = "application/json";
      }
      button.disabled = true;
      fetch(button.getAttribute("data-url"), {
        method: button.getAttribute("data-method") || "POST",
        headers: headers,
        body: body || undefined,
      })
        .then(function (response) {
          return response.text().then(function (text) {
            var detail = text;
            try {
              var json = JSON.parse(text);
              detail = json.error || json.message || json.status || text;
            } catch (ignored) {
              // a non-JSON body is shown as it is
            }
            if (response.ok) {
              show(button.textContent + ": done. Reloading…", true);
              window.setTimeout(function () { window.location.reload(); }, 1200);
            } else {
              show(button.textContent + " failed (" + response.status + "): " + detail, false);
              button.disabled = false;
            }
          });
        })
        .catch(function (error) {
          show(button.textContent + " failed: " + error, false);
          button.disabled = false;
        });
    });
  });

  refresh();
})();
