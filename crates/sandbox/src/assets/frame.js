/* klarna-sandbox: the script of the sandbox's Klarna iframes. */
(function () {
  "use strict";
  var root = document.getElementById("klarna-sandbox");
  var parentOrigin = root.getAttribute("data-parent");
  var sessionId = root.getAttribute("data-session");
  var category = root.getAttribute("data-category");
  var kind = root.getAttribute("data-kind");
  var autoFinalize = root.getAttribute("data-auto-finalize") !== "0";
  var email = root.getAttribute("data-email") || null;

  function post(message) {
    message.source = "klarna-sandbox";
    message.category = category;
    window.parent.postMessage(message, parentOrigin);
  }

  if (kind === "load") {
    // Like Klarna's own iframes, the form reports its height when it loads and whenever
    // it changes (a container shown after loading while hidden grows from 0 px).
    var height = function () { return Math.ceil(document.documentElement.scrollHeight); };
    post({ type: "loaded", height: height() });
    if (window.ResizeObserver) {
      var last = height();
      new ResizeObserver(function () {
        var now = height();
        if (now !== last) { last = now; post({ type: "height", height: now }); }
      }).observe(document.documentElement);
    }
    return;
  }

  var buttons = document.querySelectorAll("button[data-outcome]");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      fetch("/kp/frame/decision", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          session_id: sessionId, category: category, kind: kind, auto_finalize: autoFinalize,
          email: email, outcome: button.getAttribute("data-outcome")
        })
      })
        .then(function (r) { return r.json(); })
        .then(function (result) { post({ type: "result", result: result }); })
        .catch(function () { post({ type: "result", result: { approved: false, show_form: true } }); });
    });
  });
})();
