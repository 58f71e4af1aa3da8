// The console's only script: keeps the admin token for this tab (sessionStorage, never sent anywhere but
// this scheduler's API) and turns action buttons into API calls with it, naming the person in X-Actor
// so the audit log says who acted. Without a token the console is read-only: the action buttons are hidden.
(function () {
  "use strict";
  var KEY = "churn-admin-token";
  var ACTOR_KEY = "churn-actor";
  // The server's rule for X-Actor (churn_store::audit::ACTOR_RULE), checked here to say so before acting.
  var ACTOR = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
  var flash = document.getElementById("flash");

  function token() {
    return window.sessionStorage.getItem(KEY) || "";
  }

  function show(message, ok) {
    flash.textContent = message;
    flash.className = ok ? "ok" : "bad";
  }

  function actor() {
    return window.sessionStorage.getItem(ACTOR_KEY) || "";
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
    var name = document.getElementById("actor").value.trim();
    if (name !== "" && !ACTOR.test(name)) {
      show("Your name \"" + name + "\" cannot be recorded: use 1 to 64 letters, digits and . _ @ + - " +
        "(starting with a letter or digit).", false);
      return;
    }
    window.sessionStorage.setItem(KEY, input.value.trim());
    if (name !== "") {
      window.sessionStorage.setItem(ACTOR_KEY, name);
    } else {
      window.sessionStorage.removeItem(ACTOR_KEY);
    }
    input.value = "";
    refresh();
    show("Admin token set for this tab: actions are enabled" +
      (name !== "" ? " and recorded as " + name + "." : " (recorded as admin: add your name to be named)."), true);
  });

  document.getElementById("forget").addEventListener("click", function () {
    window.sessionStorage.removeItem(KEY);
    window.sessionStorage.removeItem(ACTOR_KEY);
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
      if (actor() !== "") {
        headers["X-Actor"] = actor();
      }
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

  document.getElementById("actor").value = actor();
  refresh();
})();
