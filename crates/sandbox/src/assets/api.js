/* klarna-sandbox: a stand-in for Klarna's Payments JS SDK (https://x.klarnacdn.net/kp/lib/v1/api.js).
 * Same global (Klarna.Payments), same option names, callback shapes and named exceptions as
 * the real SDK; it renders its forms in iframes served by the sandbox. Not Klarna's code. */
(function () {
  "use strict";
  if (window.Klarna && window.Klarna.Payments && window.Klarna.Payments.__sandbox) {
    return;
  }
  var script = document.currentScript;
  var ORIGIN = new URL(script ? script.src : location.href).origin;
  var state = { session: null, loaded: {}, listeners: {}, pending: null };

  function named(name, message) {
    var e = new Error(message);
    e.name = name;
    return e;
  }

  function decodeToken(token) {
    var parts = typeof token === "string" ? token.split(".") : [];
    if (parts.length !== 3) {
      throw named("InvalidClientTokenError", "The client token is not a valid JWT");
    }
    try {
      var json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
      return JSON.parse(json);
    } catch (e) {
      throw named("InvalidClientTokenError", "The client token is not a valid JWT");
    }
  }

  // (options, callback) and (options, data, callback) are both accepted, like Klarna's.
  function args(options, data, callback) {
    if (typeof data === "function") {
      return { options: options || {}, data: {}, callback: data };
    }
    return { options: options || {}, data: data || {}, callback: callback || function () {} };
  }

  function category(options) {
    if (options.payment_method_category) {
      return options.payment_method_category;
    }
    if (options.payment_method_categories && options.payment_method_categories.length) {
      return options.payment_method_categories[0];
    }
    return null;
  }

  function emit(event, value) {
    (state.listeners[event] || []).forEach(function (fn) {
      try { fn(value); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  function frameUrl(kind, cat, extra) {
    var url = ORIGIN + "/kp/frame/" + kind + "?session_id=" + encodeURIComponent(state.session) +
      "&category=" + encodeURIComponent(cat) + "&parent=" + encodeURIComponent(location.origin);
    Object.keys(extra || {}).forEach(function (k) {
      if (extra[k] !== undefined && extra[k] !== null) {
        url += "&" + k + "=" + encodeURIComponent(String(extra[k]));
      }
    });
    return url;
  }

  function email(data) {
    return data && data.billing_address && data.billing_address.email;
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== ORIGIN || !event.data || event.data.source !== "klarna-sandbox") {
      return;
    }
    var msg = event.data;
    if (msg.type === "loaded" && state.loaded[msg.category]) {
      var entry = state.loaded[msg.category];
      if (entry.frame.contentWindow === event.source && entry.callback) {
        var cb = entry.callback;
        entry.callback = null;
        entry.frame.style.height = msg.height + "px";
        cb({ show_form: true });
        emit("heightChanged", msg.height);
      }
    } else if (msg.type === "height" && state.loaded[msg.category]
        && state.loaded[msg.category].frame.contentWindow === event.source) {
      state.loaded[msg.category].frame.style.height = msg.height + "px";
      emit("heightChanged", msg.height);
    } else if (msg.type === "result" && state.pending && state.pending.frame.contentWindow === event.source) {
      var pending = state.pending;
      state.pending = null;
      pending.overlay.remove();
      emit("fullscreenOverlayHidden");
      pending.callback(msg.result);
    }
  });

  function overlay(kind, cat, callback, extra) {
    var wrap = document.createElement("div");
    wrap.id = "klarna-sandbox-overlay";
    wrap.setAttribute("style", "position:fixed;inset:0;z-index:2147483647;background:rgba(23,23,23,.55);display:flex;align-items:center;justify-content:center");
    var frame = document.createElement("iframe");
    frame.id = "klarna-sandbox-" + kind;
    frame.title = "Klarna";
    frame.src = frameUrl(kind, cat, extra);
    frame.setAttribute("style", "width:min(420px,100vw);height:min(520px,100vh);border:0;border-radius:12px;background:#fff");
    wrap.appendChild(frame);
    document.body.appendChild(wrap);
    state.pending = { frame: frame, overlay: wrap, callback: callback };
    emit("fullscreenOverlayShown");
  }

  var Payments = {
    __sandbox: true,
    init: function (options) {
      var claims = decodeToken(options && options.client_token);
      state.session = claims.session_id;
      state.loaded = {};
    },
    load: function (options, data, callback) {
      var a = args(options, data, callback);
      if (!state.session) {
        a.callback({ show_form: false });
        throw named("ApplicationNotInitializedError", "Klarna.Payments.init has not been called");
      }
      var container = a.options.container;
      var el = typeof container === "string" ? document.querySelector(container) : container;
      if (!el || !el.appendChild) {
        a.callback({ show_form: false });
        throw named("InvalidContainerSelectorError", "The container cannot be found");
      }
      var cat = category(a.options);
      if (!cat) {
        a.callback({ show_form: false });
        throw named("PaymentMethodCategoryNotProvidedError", "No payment_method_category given");
      }
      el.innerHTML = "";
      var frame = document.createElement("iframe");
      frame.id = "klarna-" + cat + "-main";
      frame.title = "Klarna " + cat;
      frame.src = frameUrl("load", cat);
      frame.setAttribute("style", "width:100%;height:120px;border:0");
      el.appendChild(frame);
      state.loaded[cat] = { frame: frame, callback: a.callback };
    },
    authorize: function (options, data, callback) {
      var a = args(options, data, callback);
      var cat = category(a.options);
      if (!cat || !state.loaded[cat]) {
        throw named("ApplicationNotLoadedError", "Klarna.Payments.load has not been called for " + cat);
      }
      if (state.pending) {
        // Klarna ignores a second authorize while its dialog is open.
        return;
      }
      overlay("authorize", cat, a.callback, {
        auto_finalize: a.options.auto_finalize === false ? "0" : "1",
        email: email(a.data)
      });
    },
    reauthorize: function (options, data, callback) {
      var a = args(options, data, callback);
      var cat = category(a.options);
      if (!cat || !state.loaded[cat]) {
        throw named("ApplicationNotLoadedError", "Klarna.Payments.load has not been called for " + cat);
      }
      if (state.pending) {
        return;
      }
      overlay("authorize", cat, a.callback, { email: email(a.data) });
    },
    finalize: function (options, data, callback) {
      var a = args(options, data, callback);
      var cat = category(a.options);
      if (!cat || !state.loaded[cat]) {
        throw named("ApplicationNotLoadedError", "Klarna.Payments.load has not been called for " + cat);
      }
      if (state.pending) {
        return;
      }
      overlay("finalize", cat, a.callback, { email: email(a.data) });
    },
    loadPaymentReview: function () {
      throw named("OperationNotSupportedError", "loadPaymentReview is only offered in the US");
    },
    on: function (event, fn) {
      if (["heightChanged", "fullscreenOverlayShown", "fullscreenOverlayHidden"].indexOf(event) < 0) {
        throw named("EventNotSupportedError", "Unsupported event " + event);
      }
      (state.listeners[event] = state.listeners[event] || []).push(fn);
    },
    off: function (event) {
      delete state.listeners[event];
    }
  };

  window.Klarna = window.Klarna || {};
  window.Klarna.Payments = Payments;
  if (typeof window.klarnaAsyncCallback === "function") {
    setTimeout(window.klarnaAsyncCallback);
  }
})();
