// The portal's one script: progressive enhancement of server-rendered
// pages. Forms with data-api and buttons with data-action call the
// portal's /api/ routes (same origin, CSRF token in a header, JSON body),
// show the API's errors next to the field they name, then reload.
(function () {
  'use strict';
  var meta = function (n) {
    var m = document.querySelector('meta[name="' + n + '"]');
    return m ? m.getAttribute('content') : '';
  };
  var csrf = meta('csrf-token');
  var base = meta('portal-base');

  function api(method, path, body, raw) {
    var opt = {method: method, credentials: 'same-origin', headers: {'Accept': 'application/json'}};
    if (method !== 'GET') {
      opt.headers['Content-Type'] = 'application/json';
      opt.headers['X-CSRF-Token'] = csrf;
      opt.body = JSON.stringify(body || {});
    }
    return fetch(base + (raw ? '' : '/api') + path, opt).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
        if (!res.ok) {
          var e = (data && data.error) || {};
          var err = new Error(e.message || (res.status === 401 ? 'Your session has ended: open the portal link again.' : 'Request failed (HTTP ' + res.status + ')'));
          err.status = res.status;
          throw err;
        }
        return data;
      });
    }, function () { throw new Error('Could not reach the server. Check your connection and try again.'); });
  }

  function toast(msg) {
    var t = document.getElementById('toast');
    if (!t) return;
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 5000);
  }

  // result shows a message next to the control that caused it.
  function result(el, msg, bad) {
    var scope = el.closest('[data-result-scope]');
    var slot = scope && scope.querySelector('[data-result]');
    if (!slot) { toast(msg); return; }
    slot.textContent = msg;
    slot.className = 'result ' + (bad ? 'bad' : 'ok');
    slot.hidden = false;
  }

  // body reads a form into the JSON the API takes. The event picker's
  // checkboxes and "other patterns" become one events list; in a patch an
  // emptied field is null (back to its default).
  function formBody(form) {
    var body = {}, events = [], hasEvents = false, patch = form.hasAttribute('data-patch');
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) return;
      if (el.name === 'events') {
        hasEvents = true;
        if (el.checked) events.push(el.value);
      } else if (el.name === 'events_other') {
        hasEvents = true;
        el.value.split(',').forEach(function (s) { s = s.trim(); if (s) events.push(s); });
      } else if (el.type === 'checkbox') {
        body[el.name] = el.checked;
      } else {
        var v = el.value.trim();
        if (v !== '') body[el.name] = v;
        else if (patch) body[el.name] = null;
      }
    });
    if (hasEvents) body.events = events.indexOf('*') >= 0 ? ['*'] : events;
    return body;
  }

  function clearErrors(form) {
    form.querySelectorAll('[data-error-for]').forEach(function (p) { p.hidden = true; p.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach(function (f) { f.removeAttribute('aria-invalid'); });
  }

  // fieldError puts "field: message" next to that field, anything else
  // at the bottom of the form.
  function fieldError(form, err) {
    var m = /^([A-Za-z_][A-Za-z0-9_]*)(?:[.[][^:]*)?: ([\s\S]*)$/.exec(err.message);
    var slot = m && form.querySelector('[data-error-for="' + m[1] + '"]');
    if (slot) {
      slot.textContent = m[2];
      slot.hidden = false;
      var field = form.querySelector('[name="' + m[1] + '"]') || (m[1] === 'events' && form.querySelector('[name="events_other"]'));
      if (field) {
        field.setAttribute('aria-invalid', 'true');
        var d = field.closest('details');
        if (d) d.open = true;
        field.focus();
      }
      return;
    }
    slot = form.querySelector('[data-error-for="_form"]');
    slot.textContent = err.message;
    slot.hidden = false;
  }

  function showSecrets(el, s) {
    var card = el.closest('[data-result-scope]');
    var box = card.querySelector('.secret');
    box.classList.remove('masked');
    box.querySelector('[data-secret]').textContent = s.secret;
    var copy = card.querySelector('[data-copy]');
    if (copy) copy.hidden = false;
    var prev = card.querySelector('[data-previous]');
    if (prev) {
      prev.textContent = '';
      (s.previous || []).forEach(function (p) {
        var li = document.createElement('li');
        var code = document.createElement('code');
        code.textContent = p.secret;
        li.append('Previous secret, signs until ' + new Date(p.expires_at).toLocaleString() + ': ', code);
        prev.append(li);
      });
      prev.hidden = !(s.previous && s.previous.length);
    }
  }

  var after = {
    reload: function () { location.reload(); },
    loggedout: function () {
      var main = document.getElementById('main');
      var h = document.createElement('h1');
      var p = document.createElement('p');
      h.textContent = 'You are logged out';
      p.textContent = 'Open the link from your account again to come back.';
      main.replaceChildren(h, p);
      document.querySelectorAll('.nav, .logout').forEach(function (el) { el.hidden = true; });
    },
    created: function (form, res) {
      var card = document.querySelector('[data-created]');
      card.querySelector('[data-secret]').textContent = res.secret || '(not signed)';
      card.querySelector('[data-created-link]').setAttribute('href', base + '/endpoints/' + encodeURIComponent(res.name));
      form.hidden = true;
      card.hidden = false;
      card.focus();
    },
    secret: function (el, res) {
      if (el.getAttribute('data-action').indexOf('rotate') >= 0) {
        // A rotation answers the new secret only: read the previous ones too.
        return api('GET', el.getAttribute('data-action').split(' ')[1].replace(/rotate-secret$/, 'secret')).then(function (s) {
          showSecrets(el, s);
          result(el, 'Secret rotated. Update your server with the new secret.', false);
        });
      }
      showSecrets(el, res);
      el.hidden = true;
    },
    test: function (el, res) {
      var a = res.attempt || {};
      var how = a.status ? 'HTTP ' + a.status : (a.error || 'no answer');
      result(el, (res.ok ? 'Test event delivered: ' : 'Test event failed: ') + how + ' in ' + Math.round(a.latency_ms || 0) + ' ms.', !res.ok);
    },
    resent: function (el, res) {
      var n = res.redelivered !== undefined ? res.redelivered : (res.endpoints || []).length;
      result(el, n === 1 ? 'Queued again: 1 delivery.' : 'Queued again: ' + n + ' deliveries.', false);
      setTimeout(function () { location.reload(); }, 1200);
    }
  };

  function then(el, res) {
    var how = el.getAttribute('data-then') || 'reload';
    if (how.indexOf('goto:') === 0) { location.href = base + how.slice(5); return; }
    return (after[how] || after.reload)(el, res);
  }

  // The operators' login: the admin token as JSON, then the endpoints.
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.hasAttribute('data-login')) return;
    ev.preventDefault();
    clearErrors(form);
    var field = form.querySelector('[name=token]');
    fetch(base + '/login', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({token: field.value})}).then(function (res) {
      if (res.ok) { location.href = base + '/endpoints'; return; }
      var slot = form.querySelector('[data-error-for="token"]');
      slot.textContent = res.status === 401 ? 'That is not the admin token.' : 'Could not log in (HTTP ' + res.status + ').';
      slot.hidden = false;
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    });
  });

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.hasAttribute('data-api')) return;
    ev.preventDefault();
    clearErrors(form);
    var spec = form.getAttribute('data-api').split(' ');
    var btn = form.querySelector('[type=submit]');
    btn.disabled = true;
    api(spec[0], spec[1], formBody(form))
      .then(function (res) { return then(form, res); })
      .catch(function (err) { fieldError(form, err); })
      .finally(function () { btn.disabled = false; });
  });

  document.addEventListener('click', function (ev) {
    var copy = ev.target.closest('[data-copy]');
    if (copy) {
      var src = document.querySelector(copy.getAttribute('data-copy'));
      if (src && navigator.clipboard) {
        navigator.clipboard.writeText(src.textContent).then(function () { toast('Copied.'); }, function () { toast('Select the text to copy it.'); });
      } else if (src) {
        getSelection().selectAllChildren(src);
      }
      return;
    }
    var b = ev.target.closest('button[data-action]');
    if (!b) return;
    // Destructive buttons ask for a second click instead of a dialog.
    var confirmText = b.getAttribute('data-confirm');
    if (confirmText && !b.classList.contains('armed')) {
      b.dataset.label = b.textContent;
      b.textContent = confirmText;
      b.classList.add('armed');
      b.armTimer = setTimeout(function () { b.textContent = b.dataset.label; b.classList.remove('armed'); }, 5000);
      return;
    }
    clearTimeout(b.armTimer);
    var spec = b.getAttribute('data-action').split(' ');
    var body = {};
    Array.prototype.forEach.call(b.attributes, function (a) {
      if (a.name.indexOf('data-arg-') === 0) body[a.name.slice(9)] = a.value;
    });
    b.disabled = true;
    b.setAttribute('aria-busy', 'true');
    api(spec[0], spec[1], spec[0] === 'GET' ? undefined : body, b.hasAttribute('data-raw'))
      .then(function (res) { return then(b, res); })
      .catch(function (err) { result(b, err.message, true); })
      .finally(function () {
        b.disabled = false;
        b.removeAttribute('aria-busy');
        if (b.classList.contains('armed')) { b.textContent = b.dataset.label; b.classList.remove('armed'); }
      });
  });

  // Editing a field clears the error shown next to it.
  document.addEventListener('input', function (ev) {
    var el = ev.target, form = el.form;
    if (!form || !el.hasAttribute('aria-invalid')) return;
    el.removeAttribute('aria-invalid');
    var name = el.name === 'events_other' ? 'events' : el.name;
    var slot = form.querySelector('[data-error-for="' + name + '"]');
    if (slot) slot.hidden = true;
  });

  // "All event types" makes the single types moot: show them as such.
  document.addEventListener('change', function (ev) {
    if (ev.target.name === 'events' && ev.target.value === '*') syncAll(ev.target);
  });
  function syncAll(all) {
    var set = all.closest('fieldset');
    if (set) set.classList.toggle('all-on', all.checked);
  }
  document.querySelectorAll('input[name="events"][value="*"]').forEach(syncAll);
})();
