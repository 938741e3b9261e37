/*
 * protofuse desk: what the agent console and the operator dashboard share, served to both as /<page>/desk.js
 * before the page's own script (src/server/pages.rs). Plain JavaScript, no build step: this file is served as
 * committed (compiled into the binary).
 *
 * - the page's settings in sessionStorage (this tab only, gone when it closes);
 * - a JSON API client that sends the pasted credential as a Bearer token, signs out on 401 and rejects other
 *   failures with the API's error message, HTTP status and error code;
 * - the sign-in form: prove the credential with one call, keep the settings, clear the secret field, open;
 *   and back to the form on sign-out;
 * - the status line after each refresh;
 * - small DOM helpers (texts only, never HTML: what is shown comes from customers and operators).
 */
(function () {
  'use strict';

  var MIN_INTERVAL_MS = 500;
  var MAX_INTERVAL_MS = 60000;

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text; // never innerHTML
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function say(id, text) {
    var node = $(id);
    node.textContent = text || '';
    show(node, !!text);
  }

  // The page's settings under `name` in sessionStorage; with storage off, the page works until it is closed.
  function kept(name) {
    return {
      load: function () {
        try {
          return JSON.parse(sessionStorage.getItem(name)) || {};
        } catch (e) {
          return {};
        }
      },
      save: function (settings) {
        try { sessionStorage.setItem(name, JSON.stringify(settings)); } catch (e) { /* kept in memory only */ }
      },
      forget: function () {
        try { sessionStorage.removeItem(name); } catch (e) { /* nothing kept */ }
      }
    };
  }

  // The refresh interval the person typed, in ms, held to 0.5–60 s (`fallback` seconds when empty).
  function intervalMs(typed, fallback) {
    return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, (parseFloat(typed) || fallback) * 1000));
  }

  function errorText(json) {
    return (json && json.error && (json.error.message || json.error.code)) || 'request failed';
  }

  // call(method, path, body?, headers?) → the JSON answer ({} for 204). `credential()` is sent as a Bearer
  // token when set; a 401 calls `refused(message)` and rejects with 'unauthenticated'.
  function client(credential, refused) {
    return function call(method, path, body, headers) {
      var init = { method: method, headers: {} };
      var secret = credential();
      if (secret) init.headers.Authorization = 'Bearer ' + secret;
      Object.keys(headers || {}).forEach(function (h) { init.headers[h] = headers[h]; });
      if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      return fetch(path, init).then(function (response) {
        if (response.status === 204) return {};
        return response.json().catch(function () { return {}; }).then(function (json) {
          if (response.status === 401) {
            refused(errorText(json));
            throw new Error('unauthenticated');
          }
          if (!response.ok) {
            var failure = new Error(errorText(json) + ' (' + response.status + ')');
            failure.status = response.status;
            failure.code = json && json.error && json.error.code;
            throw failure;
          }
          return json;
        });
      });
    };
  }

  // The sign-in form (#sign-in, #sign-in-error, #sign-out) around the page's `main` element; the settings the
  // person signed in with are kept in `tab` until sign-out.
  function signInForm(main, tab) {
    var form = {
      // `check()` proves the credential with one call; then `settings` are kept, the secret field cleared and
      // `opened()` runs. A refusal is shown on the form.
      submit: function (check, settings, secretField, opened) {
        return check().then(function () {
          tab.save(settings);
          $(secretField).value = '';
          opened();
        }, function (e) {
          if (e.message !== 'unauthenticated') say('sign-in-error', e.message);
        });
      },
      open: function () {
        show($('sign-in'), false);
        show($(main), true);
        show($('sign-out'), true);
        say('sign-in-error', '');
      },
      // Back to the form, the settings forgotten, `why` shown on it.
      close: function (why) {
        tab.forget();
        show($(main), false);
        show($('sign-in'), true);
        show($('sign-out'), false);
        say('sign-in-error', why);
      }
    };
    return form;
  }

  // Shows in #status whether one refresh's `work` (promises) all succeeded; resolves either way.
  function refreshed(work) {
    return Promise.all(work).then(function () {
      $('status').textContent = 'Updated ' + new Date().toLocaleTimeString();
      $('status').setAttribute('data-state', 'ok');
    }, function (e) {
      $('status').textContent = 'Not updated: ' + e.message;
      $('status').setAttribute('data-state', 'error');
    });
  }

  window.ProtofuseDesk = {
    $: $, el: el, show: show, say: say, kept: kept, intervalMs: intervalMs, client: client, signInForm: signInForm,
    refreshed: refreshed
  };
})();
