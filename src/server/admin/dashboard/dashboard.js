/*
 * protofuse operator dashboard: each destination's breaker (with force open / close / auto), outbox depth and
 * oldest age, dead letters (show, replay, discard), the ingest rate, and the binlog importers' progress. Plain
 * JavaScript, no framework, no chart library and no build step: this file is served as committed (compiled into
 * the binary).
 *
 * It calls the admin API on its own listener with the token the operator pasted (sessionStorage: this tab
 * only), and polls at the interval the operator chose. Charts are inline SVG sparklines of the last samples
 * this page took; nothing is kept on the server for them.
 */
(function () {
  'use strict';

  var D = window.ProtofuseDesk; // desk.js: storage, the API client, the sign-in form, DOM helpers
  var $ = D.$, el = D.el, say = D.say;
  var SAMPLES = 60; // points per sparkline
  var INGESTED = 'protofuse_messages_ingested_total';

  var tab = D.kept('protofuse.dashboard');
  var form = D.signInForm('board', tab);
  var settings = tab.load(); // {token, intervalMs}
  var timer = null;
  var depth = {}; // destination → [pending, …]
  var ingest = { last: null, at: 0, rates: [] };
  var imported = {}; // mapping → {last, at, rates}

  // === the API ===

  // The token may be empty: `[admin] token` unset leaves the admin API open on its listener.
  var call = D.client(function () { return settings.token; }, function (message) {
    signOut('The admin API refused the token: ' + message);
  });

  // === signing in ===

  function signIn(event) {
    event.preventDefault();
    settings = { token: $('token').value.trim(), intervalMs: D.intervalMs($('interval').value, 2) };
    form.submit(function () { return call('GET', '/admin/destinations'); }, settings, 'token', start);
  }

  function signOut(why) {
    clearTimeout(timer);
    timer = null;
    settings = {};
    form.close(why);
  }

  function start() {
    form.open();
    tick();
  }

  function tick() {
    clearTimeout(timer);
    var work = [refreshDestinations(), refreshDeadLetters(), refreshIngest(), refreshImporters()];
    D.refreshed(work).then(function () {
      if (!$('board').hidden) timer = setTimeout(tick, settings.intervalMs);
    });
  }

  // === charts ===

  function remember(series, value) {
    series.push(value);
    if (series.length > SAMPLES) series.shift();
  }

  // A sparkline of `values` in `svg`, scaled to its own maximum (at least 1, so a flat zero stays at the bottom).
  function sparkline(svg, values) {
    var box = svg.viewBox.baseVal;
    var width = box.width || 120;
    var height = box.height || 24;
    var max = Math.max(1, Math.max.apply(null, values.concat([0])));
    var step = values.length > 1 ? width / (SAMPLES - 1) : 0;
    var offset = width - step * (values.length - 1);
    var points = values.map(function (v, i) {
      return (offset + i * step).toFixed(1) + ',' + (height - 2 - (v / max) * (height - 4)).toFixed(1);
    });
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var ns = 'http://www.w3.org/2000/svg';
    var base = document.createElementNS(ns, 'line');
    base.setAttribute('x1', '0');
    base.setAttribute('x2', String(width));
    base.setAttribute('y1', String(height - 1));
    base.setAttribute('y2', String(height - 1));
    base.setAttribute('class', 'base');
    svg.appendChild(base);
    if (points.length) {
      var area = document.createElementNS(ns, 'polygon');
      area.setAttribute('points', offset.toFixed(1) + ',' + height + ' ' + points.join(' ') + ' ' + width + ',' + height);
      area.setAttribute('class', 'area');
      svg.appendChild(area);
    }
    var line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', points.join(' '));
    line.setAttribute('class', 'line');
    svg.appendChild(line);
    var title = document.createElementNS(ns, 'title');
    title.textContent = 'last ' + values.length + ' samples, max ' + max;
    svg.appendChild(title);
    svg.setAttribute('data-points', String(values.length));
    svg.setAttribute('data-last', String(values.length ? values[values.length - 1] : ''));
  }

  // === destinations ===

  function refreshDestinations() {
    return call('GET', '/admin/destinations').then(function (answer) {
      var body = $('destinations').tBodies[0];
      body.textContent = '';
      (answer.destinations || []).forEach(function (d) {
        remember(depth[d.name] = depth[d.name] || [], d.pending);
        body.appendChild(destinationRow(d));
      });
    });
  }

  function destinationRow(d) {
    var row = el('tr');
    row.setAttribute('data-name', d.name);
    row.setAttribute('data-state', d.state);
    row.appendChild(el('td', 'name', d.name));
    var state = el('td');
    state.appendChild(el('span', 'badge state-' + d.state, d.state.replace('_', ' ')));
    row.appendChild(state);
    row.appendChild(el('td', 'override', d.override === 'auto' ? 'auto' : d.override.replace('_', ' ')));
    row.appendChild(el('td', 'pending num', String(d.pending)));
    row.appendChild(el('td', 'num', d.pending ? duration(d.oldest_age_seconds) : '–'));
    row.appendChild(el('td', 'dead num', String(d.dead_letters)));
    var chart = el('td');
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 120 24');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'outbox depth of ' + d.name);
    chart.appendChild(svg);
    row.appendChild(chart);
    sparkline(svg, depth[d.name]);
    var force = el('td', 'force');
    [['forced_open', 'Open'], ['forced_closed', 'Close'], ['auto', 'Auto']].forEach(function (choice) {
      var button = el('button', 'force-' + choice[0], choice[1]);
      button.type = 'button';
      button.disabled = d.override === choice[0];
      button.onclick = function () { setBreaker(d.name, choice[0]); };
      force.appendChild(button);
    });
    row.appendChild(force);
    return row;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    if (seconds < 60) return seconds.toFixed(1) + ' s';
    if (seconds < 3600) return Math.round(seconds / 60) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }

  function setBreaker(name, override) {
    act(call('PUT', '/admin/destinations/' + encodeURIComponent(name) + '/breaker', { override: override }));
  }

  // An operator's action, then a refresh so the page shows its effect.
  function act(promise) {
    promise.then(function () { say('action-error', ''); }, function (e) {
      if (e.message !== 'unauthenticated') say('action-error', e.message);
    }).then(function () { if (settings.intervalMs) tick(); });
  }

  // === dead letters ===

  function refreshDeadLetters() {
    return call('GET', '/admin/dead-letters?limit=100').then(function (answer) {
      var items = answer.items || [];
      var body = $('dead-letters').tBodies[0];
      body.textContent = '';
      items.forEach(function (d) { body.appendChild(deadLetterRow(d)); });
      $('dead-count').textContent = String(items.length) + (answer.next_after ? '+' : '');
      $('dead-empty').hidden = items.length > 0;
    });
  }

  function deadLetterRow(d) {
    var row = el('tr');
    row.setAttribute('data-id', String(d.id));
    row.setAttribute('data-message-id', d.message_id);
    row.appendChild(el('td', 'num', String(d.id)));
    row.appendChild(el('td', null, d.destination));
    row.appendChild(el('td', 'mono', d.message_id));
    row.appendChild(el('td', 'num', String(d.attempts)));
    row.appendChild(el('td', 'error-text', d.last_error));
    row.appendChild(el('td', null, new Date(d.dead_at).toLocaleString()));
    var actions = el('td', 'force');
    var show = el('button', 'show', 'Show');
    show.type = 'button';
    show.onclick = function () { showDeadLetter(d.id); };
    var replay = el('button', 'replay', 'Replay');
    replay.type = 'button';
    replay.onclick = function () { act(call('POST', '/admin/dead-letters/' + d.id + '/replay')); };
    var discard = el('button', 'discard', 'Discard');
    discard.type = 'button';
    discard.onclick = function () { act(call('DELETE', '/admin/dead-letters/' + d.id)); };
    actions.appendChild(show);
    actions.appendChild(replay);
    actions.appendChild(discard);
    row.appendChild(actions);
    return row;
  }

  function showDeadLetter(id) {
    call('GET', '/admin/dead-letters/' + id).then(function (d) {
      var detail = $('dead-detail');
      detail.textContent = JSON.stringify(d, null, 2);
      detail.setAttribute('data-id', String(id));
      detail.hidden = false;
    }, function (e) { say('action-error', e.message); });
  }

  // === ingest rate ===

  // Stored messages (duplicates are not new work) summed over protocols, from the Prometheus text format.
  function storedTotal(text) {
    var total = 0;
    text.split('\n').forEach(function (line) {
      if (line.indexOf(INGESTED + '{') !== 0 || line.indexOf('outcome="stored"') < 0) return;
      var value = parseFloat(line.slice(line.lastIndexOf(' ') + 1));
      if (!isNaN(value)) total += value;
    });
    return total;
  }

  function refreshIngest() {
    return fetch('/metrics').then(function (response) {
      if (!response.ok) throw new Error('/metrics answered ' + response.status);
      return response.text();
    }).then(function (text) {
      var total = storedTotal(text);
      var now = Date.now();
      if (ingest.last !== null && now > ingest.at) {
        // A restarted server's counter starts again from zero: that interval counts as zero, not negative.
        var rate = Math.max(0, total - ingest.last) / ((now - ingest.at) / 1000);
        remember(ingest.rates, Math.round(rate * 10) / 10);
        $('ingest-rate').textContent = rate.toFixed(1);
        sparkline($('ingest-chart'), ingest.rates);
      }
      ingest.last = total;
      ingest.at = now;
      $('ingest-chart').setAttribute('data-total', String(total));
    });
  }

  // === importers ===

  function refreshImporters() {
    return call('GET', '/admin/importers').then(function (answer) {
      var items = answer.importers || [];
      var body = $('importers').tBodies[0];
      body.textContent = '';
      items.forEach(function (i) { body.appendChild(importerRow(i)); });
      $('importers-empty').hidden = items.length > 0;
    });
  }

  function importerRow(i) {
    var seen = imported[i.name] = imported[i.name] || { last: null, at: 0, rates: [] };
    var now = Date.now();
    if (seen.last !== null && now > seen.at) {
      remember(seen.rates, Math.max(0, i.rows_applied - seen.last) / ((now - seen.at) / 1000));
    }
    seen.last = i.rows_applied;
    seen.at = now;
    var row = el('tr');
    row.setAttribute('data-name', i.name);
    row.appendChild(el('td', 'name', i.name));
    row.appendChild(el('td', 'phase', i.snapshot_done ? 'following' : 'snapshot'));
    row.appendChild(el('td', 'rows num', String(i.rows_applied)));
    var chart = el('td');
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 120 24');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'rows applied per second by ' + i.name);
    chart.appendChild(svg);
    row.appendChild(chart);
    sparkline(svg, seen.rates);
    row.appendChild(el('td', 'num', String(i.events_applied)));
    var position = i.gtid || (i.file ? i.file + ':' + i.pos : '–');
    row.appendChild(el('td', 'mono', position));
    var age = i.last_event_age_seconds;
    row.appendChild(el('td', 'lag', age === null || age === undefined ? '–' : duration(age) + ' ago'));
    row.appendChild(el('td', i.errors ? 'error-text' : 'num', i.errors ? i.errors + ': ' + (i.last_error || '') : '0'));
    return row;
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('sign-in').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', function () { signOut(''); });
    if (settings.intervalMs) start();
  });
})();
