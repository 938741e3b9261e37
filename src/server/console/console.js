/*
 * protofuse agent console: conversations waiting per department, take one, read its whole history (imported
 * messages included), reply, close. Plain JavaScript, no framework and no build step: this file is served as
 * committed (compiled into the binary).
 *
 * Every call is the authenticated API under /v1 with the key the agent pasted (kept in sessionStorage: this tab
 * only, gone when it closes). Live updates are polls at the interval the agent chose: a browser cannot set an
 * Authorization header on a WebSocket or an EventSource, and a poll is one indexed list read per interval.
 */
(function () {
  'use strict';

  var D = window.ProtofuseDesk; // desk.js: storage, the API client, the sign-in form, DOM helpers
  var $ = D.$, el = D.el, show = D.show, say = D.say;
  var PAGE = 500; // the API's largest page

  var tab = D.kept('protofuse.console');
  var form = D.signInForm('desk', tab);
  var settings = tab.load(); // {key, agent, name, intervalMs}
  var open = null; // {id, conversation, lastId, seen: {id: true}, triage}
  var timer = null;
  var pendingReply = null; // {key, text}: resent with the same Idempotency-Key until stored

  // === the API ===

  var api = D.client(function () { return settings.key; }, function (message) {
    signOut('The API refused the key: ' + message);
  });

  // Every page of a list, oldest first for messages.
  function allPages(path, cursor, items) {
    var sep = path.indexOf('?') < 0 ? '?' : '&';
    var url = path + sep + 'limit=' + PAGE + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
    return api('GET', url).then(function (page) {
      items = (items || []).concat(page.items || []);
      return page.next_cursor ? allPages(path, page.next_cursor, items) : items;
    });
  }

  // === signing in ===

  function signIn(event) {
    event.preventDefault();
    settings = {
      key: $('key').value.trim(),
      agent: $('agent').value.trim(),
      name: $('name').value.trim() || $('agent').value.trim(),
      intervalMs: D.intervalMs($('interval').value, 3)
    };
    // One read proves the key before the desk opens.
    form.submit(function () { return api('GET', '/v1/conversations?status=queued&limit=1'); }, settings, 'key', start);
  }

  function signOut(why) {
    clearTimeout(timer);
    timer = null;
    settings = {};
    open = null;
    form.close(why);
    $('who').textContent = '';
  }

  function start() {
    form.open();
    $('who').textContent = settings.name + ' (' + settings.agent + ')';
    $('desk').setAttribute('data-agent', settings.agent);
    tick();
  }

  // === polling ===

  function tick() {
    clearTimeout(timer);
    var work = [refreshQueue(), refreshMine()];
    if (open) work.push(refreshOpen());
    D.refreshed(work).then(function () {
      if (settings.key) timer = setTimeout(tick, settings.intervalMs);
    });
  }

  function refreshQueue() {
    return allPages('/v1/conversations?status=queued').then(function (items) {
      var groups = {};
      items.forEach(function (c) {
        var department = c.department || '';
        (groups[department] = groups[department] || []).push(c);
      });
      var queue = $('queue');
      queue.textContent = '';
      Object.keys(groups).sort().forEach(function (department) {
        var group = el('section', 'group');
        group.setAttribute('data-department', department);
        var title = el('h3', null, department || '(no department)');
        title.appendChild(el('span', 'count', String(groups[department].length)));
        group.appendChild(title);
        var list = el('ul');
        // Oldest first: who has waited longest is served first.
        groups[department].slice().reverse().forEach(function (c) { list.appendChild(conversationItem(c)); });
        group.appendChild(list);
        queue.appendChild(group);
      });
      $('waiting-count').textContent = String(items.length);
      if (!items.length) queue.appendChild(el('p', 'empty', 'Nobody is waiting.'));
    });
  }

  function refreshMine() {
    return allPages('/v1/conversations?status=assigned').then(function (items) {
      var mine = items.filter(function (c) { return c.assigned_agent === settings.agent; });
      var list = $('mine');
      list.textContent = '';
      mine.forEach(function (c) { list.appendChild(conversationItem(c)); });
      $('mine-count').textContent = String(mine.length);
    });
  }

  function conversationItem(c) {
    var item = el('li', 'item');
    item.setAttribute('data-id', c.id);
    item.setAttribute('data-status', c.status);
    if (open && open.id === c.id) item.classList.add('current');
    var button = el('button', 'open');
    button.type = 'button';
    button.appendChild(el('span', 'customer', c.customer_id));
    button.appendChild(el('span', 'meta', c.channel + (c.account ? ' · ' + c.account : '') + ' · ' + age(c.updated_at)));
    button.onclick = function () { openConversation(c.id); };
    item.appendChild(button);
    return item;
  }

  function age(timestamp) {
    var seconds = Math.max(0, Math.round((Date.now() - Date.parse(timestamp)) / 1000));
    if (seconds < 60) return seconds + ' s';
    if (seconds < 3600) return Math.round(seconds / 60) + ' min';
    return Math.round(seconds / 3600) + ' h';
  }

  // === one conversation ===

  function openConversation(id) {
    open = { id: id, conversation: null, lastId: null, seen: {}, triage: null };
    $('history').textContent = '';
    say('conv-error', '');
    show($('empty'), false);
    show($('conversation'), true);
    $('conversation').setAttribute('data-id', id);
    Array.prototype.forEach.call(document.querySelectorAll('.item'), function (item) {
      item.classList.toggle('current', item.getAttribute('data-id') === id);
    });
    refreshOpen().catch(function (e) { say('conv-error', e.message); });
  }

  // The conversation's state, then its messages after the last one shown (all of them the first time).
  function refreshOpen() {
    var current = open;
    var base = '/v1/conversations/' + encodeURIComponent(current.id);
    return api('GET', base).then(function (conversation) {
      if (open !== current) return null;
      current.conversation = conversation;
      showConversation(conversation);
      return current.lastId === null
        ? allPages(base + '/messages?order=asc')
        : allPages(base + '/messages?order=asc', current.lastId);
    }).then(function (messages) {
      if (open !== current || !messages) return;
      messages.forEach(function (m) { showMessage(current, m); });
    });
  }

  function showConversation(c) {
    var section = $('conversation');
    section.setAttribute('data-status', c.status);
    $('conv-customer').textContent = c.customer_id;
    $('conv-status').textContent = c.status;
    $('conv-channel').textContent = c.channel + (c.account ? ' · ' + c.account : '');
    $('conv-department').textContent = c.department || '—';
    $('conv-agent').textContent = c.assigned_agent || '—';
    var closed = c.status === 'closed';
    var mine = c.status === 'assigned' && c.assigned_agent === settings.agent;
    show($('take'), !closed && !mine);
    show($('close-conv'), !closed);
    $('reply').disabled = closed;
    $('send').disabled = closed;
  }

  function showMessage(current, m) {
    current.lastId = m.id;
    if (current.seen[m.id]) return;
    current.seen[m.id] = true;
    var role = (m.sender && m.sender.role) || 'system';
    var item = el('li', 'msg ' + (m.direction === 'inbound' ? 'in' : 'out'));
    item.setAttribute('data-id', m.id);
    item.setAttribute('data-role', role);
    var head = el('div', 'head');
    head.appendChild(el('span', 'sender', (m.sender && (m.sender.display_name || m.sender.external_id)) || role));
    head.appendChild(el('span', 'role', role));
    var protocol = m.source && m.source.protocol;
    if (protocol === 'import') head.appendChild(el('span', 'tag imported', 'imported'));
    head.appendChild(el('time', null, new Date(m.sent_at || m.received_at).toLocaleString()));
    item.appendChild(head);
    item.appendChild(el('div', 'text', contentText(m.content || {})));
    if (m.triage) {
      current.triage = m.triage;
      item.appendChild(el('div', 'tag triage-line', triageLine(m.triage)));
      showTriage(m.triage);
    }
    $('history').appendChild(item);
    item.scrollIntoView({ block: 'end' });
  }

  function contentText(content) {
    switch (content.type) {
      case 'text': return content.text;
      case 'link': return (content.title || '') + ' ' + (content.url || '');
      case 'image': case 'file': case 'video': case 'voice':
        return '[' + content.type + '] ' + (content.url || content.name || '');
      case 'location': return '[location] ' + (content.label || '');
      default: return '[' + (content.type || 'message') + ']';
    }
  }

  function percent(confidence) {
    return Math.round(confidence * 100) + '%';
  }

  function triageLine(t) {
    return 'triage: ' + t.intent + ' → ' + t.department + ' (' + percent(t.confidence) + ', ' + t.decision + ')';
  }

  // The latest outcome is the one that routed the conversation.
  function showTriage(t) {
    show($('triage'), true);
    $('triage-intent').textContent = t.intent;
    $('triage-department').textContent = t.department;
    $('triage-confidence').textContent = percent(t.confidence);
    $('triage-decision').textContent = t.decision + (t.handoff_reason ? ' (' + t.handoff_reason + ')' : '');
  }

  function setStatus(status) {
    var current = open;
    var body = { status: status };
    if (status === 'assigned') {
      body.assigned_agent = settings.agent;
      // Take only from whoever this page last showed: if another agent took it meanwhile, the server answers
      // 409 assignee_changed instead of handing it over silently.
      body.expected_assignee = (current.conversation && current.conversation.assigned_agent) || null;
    }
    return api('PUT', '/v1/conversations/' + encodeURIComponent(current.id) + '/status', body)
      .then(function (conversation) {
        say('conv-error', '');
        if (open === current) showConversation(conversation);
        tick();
      }, function (e) {
        if (e.code === 'assignee_changed') {
          // The refreshed conversation shows who has it now; taking it from them is a second, deliberate click.
          say('conv-error', 'Not taken: ' + e.message.replace(/ \(409\)$/, '') + '.');
          tick();
          return;
        }
        say('conv-error', e.message);
      });
  }

  function reply(event) {
    event.preventDefault();
    var text = $('reply').value;
    if (!open || !open.conversation || !text.trim()) return;
    if (!pendingReply || pendingReply.text !== text) pendingReply = { key: 'console-' + randomId(), text: text };
    var c = open.conversation;
    var message = {
      conversation_id: c.id,
      channel: c.channel,
      direction: 'outbound',
      sender: { role: 'agent', external_id: settings.agent, display_name: settings.name },
      content: { type: 'text', text: text }
    };
    if (c.account) message.account = c.account;
    $('send').disabled = true;
    api('POST', '/v1/messages', message, { 'Idempotency-Key': pendingReply.key }).then(function () {
      pendingReply = null;
      $('reply').value = '';
      say('conv-error', '');
      // Read from the store after the last message shown, not appended from the answer: a customer's message
      // stored just before the reply has a smaller id and must not be skipped by the cursor.
      tick();
    }, function (e) {
      say('conv-error', 'Not sent (send again to retry): ' + e.message);
    }).then(function () { $('send').disabled = false; });
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join('');
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('sign-in').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', function () { signOut(''); });
    $('take').addEventListener('click', function () { setStatus('assigned'); });
    $('close-conv').addEventListener('click', function () { setStatus('closed'); });
    $('compose').addEventListener('submit', reply);
    $('reply').addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) reply(e);
    });
    if (settings.key) start();
  });
})();
