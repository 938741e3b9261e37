/*
 * protofuse chat widget: a chat bubble for a site's pages, in plain JavaScript (no framework, no build step).
 * It is compiled into the protofuse binary and served at /web/widget.js; a site adds one tag:
 *
 *   <script src="https://chat.example/web/widget.js" data-site="shop" data-lang="zh" async></script>
 *
 * Options (data-* on that tag): site (required), lang ("zh" | "en"; default from the browser), user-token (an
 * HS256 JWT the site signed for a logged-in user), server (protofuse's base URL; default: where this file came
 * from), title. The protocol is the README's "Web channel": a session from POST /web/session, then a WebSocket
 * (/web/ws) or, when that cannot be opened, Server-Sent Events (/web/events) plus POST /web/messages.
 *
 * What it guarantees, and how:
 * - Every message is shown once: messages are keyed by their sequence (the message id) and a visitor's own
 *   message replaces its "sending" placeholder by client id.
 * - Nothing typed is lost: each text gets a client id when typed and is kept (also in localStorage) until the
 *   server acknowledges it; a resend carries the same id, which the server answers as a duplicate.
 * - Nothing sent is missed: after a drop it reconnects with backoff and resumes after the last sequence it saw.
 */
(function () {
  'use strict';

  var script = document.currentScript || document.querySelector('script[data-site][src*="/web/widget.js"]');
  if (!script || window.protofuseChat) {
    return; // not our tag, or already on the page (a site that added the tag twice)
  }
  var site = script.getAttribute('data-site');
  if (!site) {
    console.error('protofuse widget: data-site is required');
    return;
  }
  // The server substitutes this when it serves the file, so the stylesheet URL changes with its contents.
  var CSS_VERSION = '__PROTOFUSE_CSS_VERSION__';
  var base = (script.getAttribute('data-server') || script.src.replace(/\/web\/widget\.js(\?.*)?$/, ''))
    .replace(/\/+$/, '');
  var userToken = script.getAttribute('data-user-token') || null;
  var lang = pickLang(script.getAttribute('data-lang') || navigator.language || 'en');

  var TEXTS = {
    zh: {
      title: '在线客服', open: '打开客服对话', close: '关闭', placeholder: '输入消息…', send: '发送',
      connecting: '正在连接…', reconnecting: '连接已断开，正在重新连接…', sending: '发送中…',
      failed: '未发送', tooLarge: '消息太长，未发送', limited: '发送太频繁，稍后自动重试', agent: '客服',
      bot: '智能助手', you: '我', image: '[图片]', voice: '[语音]', video: '[视频]', location: '[位置]',
      file: '[文件]', link: '[链接]', unread: '条新消息'
    },
    en: {
      title: 'Chat with us', open: 'Open chat', close: 'Close', placeholder: 'Type a message…', send: 'Send',
      connecting: 'Connecting…', reconnecting: 'Connection lost, reconnecting…', sending: 'Sending…',
      failed: 'Not sent', tooLarge: 'Too long, not sent', limited: 'Too many messages, retrying shortly',
      agent: 'Agent', bot: 'Assistant', you: 'You', image: '[image]', voice: '[voice]', video: '[video]',
      location: '[location]', file: '[file]', link: '[link]', unread: 'new messages'
    }
  };
  var t = TEXTS[lang];

  // Backoff between reconnects: doubling from half a second, at most ten, with jitter so a restarted server
  // is not hit by every visitor at the same instant.
  var BACKOFF_FIRST_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  // A session is renewed when it has less than this left, so a long-lived page never connects with a token
  // that expires mid-way.
  var RENEW_BEFORE_MS = 60 * 60 * 1000;
  // An application ping over the WebSocket: a silently dropped network is noticed within a minute.
  var PING_EVERY_MS = 25000;
  var PONG_WITHIN_MS = 10000;

  var storeKey = 'protofuse.chat:' + base + ':' + site;
  var saved = load(); // {session: {token, visitor_id, expires_at, websocket, user}, open, pending: [{id, text}]}
  saved.pending = saved.pending || [];

  var seen = {}; // message id → true, for messages rendered
  var lastSeq = null; // the last sequence received; reconnects resume after it
  var conn = null; // the open connection: {kind, send(frame)?, close()}
  var failures = 0; // consecutive failed connects
  var sseOnly = false; // a WebSocket could not be opened on this page while SSE could: stay on SSE
  var wanted = false; // the visitor opened the chat, so a connection should be kept
  var retryTimer = null;
  var unread = 0;
  var ui = buildUi();

  window.protofuseChat = { open: function () { setOpen(true, true); }, close: function () { setOpen(false); } };
  saved.pending.forEach(function (p) { showPending(p); });
  if (saved.open) {
    setOpen(true, false); // open before the reload: open again, without taking the page's focus
  }

  // === storage ===

  function load() {
    try {
      return JSON.parse(localStorage.getItem(storeKey)) || {};
    } catch (e) {
      return {}; // storage off (private mode) or unreadable: a fresh visitor
    }
  }

  // Only what outlives the page: a message's sending state belongs to this page's connection.
  function save() {
    var kept = {
      session: saved.session,
      open: saved.open,
      pending: saved.pending.map(function (p) { return { id: p.id, text: p.text }; })
    };
    try {
      localStorage.setItem(storeKey, JSON.stringify(kept));
    } catch (e) { /* storage off: the chat still works for this page */ }
  }

  function pickLang(raw) {
    return /^zh/i.test(raw) ? 'zh' : 'en';
  }

  // === UI ===

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text; // never innerHTML: message texts are untrusted
    return node;
  }

  function buildUi() {
    var link = el('link');
    link.rel = 'stylesheet';
    link.href = base + '/web/widget.css?v=' + CSS_VERSION;
    document.head.appendChild(link);

    var root = el('div', 'pfw-root');
    root.setAttribute('data-state', 'closed');
    root.setAttribute('lang', lang);
    root.hidden = true; // until the stylesheet is in, so the page never shows it unstyled
    link.onload = link.onerror = function () { root.hidden = false; };

    var bubble = el('button', 'pfw-bubble');
    bubble.type = 'button';
    bubble.setAttribute('aria-label', t.open);
    bubble.appendChild(el('span', 'pfw-bubble-icon'));
    var badge = el('span', 'pfw-badge');
    badge.hidden = true;
    bubble.appendChild(badge);
    bubble.onclick = function () { setOpen(true, true); };

    var panel = el('section', 'pfw-panel');
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', script.getAttribute('data-title') || t.title);
    panel.hidden = true;
    var header = el('header', 'pfw-header');
    header.appendChild(el('span', 'pfw-title', script.getAttribute('data-title') || t.title));
    var closeButton = el('button', 'pfw-close', '×');
    closeButton.type = 'button';
    closeButton.setAttribute('aria-label', t.close);
    closeButton.onclick = function () { setOpen(false); };
    header.appendChild(closeButton);
    var status = el('div', 'pfw-status');
    status.setAttribute('role', 'status');
    status.hidden = true;
    var log = el('ol', 'pfw-messages');
    log.setAttribute('aria-live', 'polite');
    var form = el('form', 'pfw-compose');
    var input = el('textarea', 'pfw-input');
    input.rows = 1;
    input.placeholder = t.placeholder;
    input.setAttribute('aria-label', t.placeholder);
    var send = el('button', 'pfw-send', t.send);
    send.type = 'submit';
    form.appendChild(input);
    form.appendChild(send);
    form.onsubmit = function (e) {
      e.preventDefault();
      submit();
    };
    input.onkeydown = function (e) {
      // Enter sends, Shift+Enter is a new line; never while an IME is composing (Chinese input).
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submit();
      }
    };
    panel.appendChild(header);
    panel.appendChild(status);
    panel.appendChild(log);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(bubble);
    (document.body || document.documentElement).appendChild(root);
    return { root: root, bubble: bubble, badge: badge, panel: panel, status: status, log: log, input: input };
  }

  function setOpen(open, focus) {
    saved.open = open;
    save();
    ui.panel.hidden = !open;
    ui.bubble.hidden = open;
    if (open) {
      unread = 0;
      ui.badge.hidden = true;
      wanted = true;
      connect();
      if (focus) ui.input.focus();
      scrollDown();
    }
    showState();
  }

  function showState() {
    var state = !wanted ? 'closed' : conn && conn.ready ? 'online' : failures > 0 ? 'reconnecting' : 'connecting';
    if (!saved.open && state !== 'closed') state = 'background';
    ui.root.setAttribute('data-state', state);
    ui.root.setAttribute('data-transport', conn && conn.ready ? conn.kind : '');
    var text = state === 'reconnecting' ? t.reconnecting : state === 'connecting' ? t.connecting : '';
    ui.status.textContent = text;
    ui.status.hidden = !text;
  }

  function scrollDown() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function contentText(content) {
    switch (content && content.type) {
      case 'text': return content.text;
      case 'location': return t.location + (content.label ? ' ' + content.label : '');
      case 'file': return t.file + (content.name ? ' ' + content.name : '');
      case 'link': return content.title || content.url || t.link;
      case 'image': case 'voice': case 'video': return t[content.type];
      default: return null; // events (a follow, a menu click) are not chat lines
    }
  }

  function senderLabel(message) {
    var sender = message.sender || {};
    if (sender.role === 'agent') return sender.display_name || t.agent;
    if (sender.role === 'bot') return sender.display_name || t.bot;
    return null;
  }

  // One rendered message. `data-*` attributes name what a stylesheet (or a test) may want to select.
  function messageNode(message) {
    var role = (message.sender && message.sender.role) || 'system';
    var side = role === 'system' ? 'notice' : message.direction === 'inbound' ? 'own' : 'theirs';
    var item = el('li', 'pfw-msg pfw-' + side);
    item.setAttribute('data-seq', message.id);
    item.setAttribute('data-role', role);
    item.setAttribute('data-state', 'sent');
    if (message.client_id) item.setAttribute('data-client-id', message.client_id);
    var label = senderLabel(message);
    if (label) item.appendChild(el('span', 'pfw-sender', label));
    var body = el('span', 'pfw-text');
    var content = message.content || {};
    var url = content.url || '';
    if ((content.type === 'link' || content.type === 'image' || content.type === 'file') && /^https?:\/\//i.test(url)) {
      var a = el('a', null, contentText(content));
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      body.appendChild(a);
    } else {
      body.textContent = contentText(content);
    }
    item.appendChild(body);
    return item;
  }

  // A message from the server, in sequence order: appended after the rendered ones, before any placeholders
  // still waiting for their acknowledgement.
  function showMessage(message, live) {
    if (seen[message.id] || contentText(message.content) === null) {
      seen[message.id] = true;
      return;
    }
    seen[message.id] = true;
    var node = messageNode(message);
    var firstPending = ui.log.querySelector('.pfw-msg[data-state="sending"], .pfw-msg[data-state="failed"]');
    if (message.client_id) {
      var placeholder = ui.log.querySelector('.pfw-msg[data-pending-id="' + cssEscape(message.client_id) + '"]');
      if (placeholder) {
        if (placeholder === firstPending) firstPending = placeholder.nextSibling;
        placeholder.remove();
      }
      dropPending(message.client_id);
    }
    ui.log.insertBefore(node, firstPending);
    if (live && !saved.open && message.direction === 'outbound') {
      unread += 1;
      ui.badge.textContent = String(unread);
      ui.badge.title = unread + ' ' + t.unread;
      ui.badge.hidden = false;
    }
    scrollDown();
  }

  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/["\\]/g, '\\$&');
  }

  function showPending(pending) {
    var item = el('li', 'pfw-msg pfw-own');
    item.setAttribute('data-role', 'customer');
    item.setAttribute('data-state', 'sending');
    item.setAttribute('data-pending-id', pending.id);
    item.appendChild(el('span', 'pfw-text', pending.text));
    item.appendChild(el('span', 'pfw-note', t.sending));
    item.onclick = function () {
      // A failed message is resent (same client id) when the visitor taps it.
      if (item.getAttribute('data-state') === 'failed') {
        markPending(pending.id, 'sending', t.sending);
        pending.failed = false;
        flush();
      }
    };
    ui.log.appendChild(item);
    scrollDown();
  }

  function markPending(id, state, note) {
    var item = ui.log.querySelector('.pfw-msg[data-pending-id="' + cssEscape(id) + '"]');
    if (!item) return;
    item.setAttribute('data-state', state);
    item.querySelector('.pfw-note').textContent = note;
  }

  // === sending ===

  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Pages served over plain http have no randomUUID; getRandomValues is everywhere. A UUIDv4.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function submit() {
    var text = ui.input.value.replace(/^\s+|\s+$/g, '');
    if (!text) return;
    ui.input.value = '';
    var pending = { id: clientId(), text: text };
    saved.pending.push(pending);
    save();
    showPending(pending);
    flush();
  }

  function dropPending(id) {
    saved.pending = saved.pending.filter(function (p) { return p.id !== id; });
    save();
  }

  function findPending(id) {
    return saved.pending.filter(function (p) { return p.id === id; })[0];
  }

  // Sends the messages not yet acknowledged, in the order typed, over whichever transport is up; called again
  // on each connect and acknowledgement. A WebSocket keeps them in order by itself; POSTs go one at a time,
  // or two in flight could be stored the other way round.
  function flush() {
    var c = conn;
    if (!c || !c.ready) return;
    for (var i = 0; i < saved.pending.length; i++) {
      var p = saved.pending[i];
      if (p.failed || p.inFlight === 'acked') continue;
      if (p.holdUntil > Date.now()) return; // rate limited: the later ones wait behind it
      if (p.inFlight) {
        if (c.kind === 'sse') return;
        continue;
      }
      p.inFlight = c;
      c.sendMessage(p);
      if (c.kind === 'sse') return;
    }
  }

  // The server stored one message (or had it already): its message follows on the stream, if it has not come
  // yet, and replaces the placeholder.
  function acknowledged(id) {
    var p = findPending(id);
    if (p) p.inFlight = 'acked';
    flush();
  }

  function refused(id, code, retryAfterSecs) {
    var p = findPending(id);
    if (!p) return;
    p.inFlight = null;
    if (code === 'rate_limited' || code === 'channel_full' || code === 'too_many_connections') {
      markPending(id, 'sending', t.limited);
      p.holdUntil = Date.now() + 1000 * (retryAfterSecs || 2);
      setTimeout(flush, 1000 * (retryAfterSecs || 2) + 50);
    } else {
      p.failed = true;
      markPending(id, 'failed', code === 'message_too_large' ? t.tooLarge : t.failed);
    }
  }

  // === session ===

  function userOfToken(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part)).sub || null; // not verified here: the server verifies it
    } catch (e) {
      return null;
    }
  }

  // The visitor's session: the saved one while it is valid, renewed when it nears its expiry, or a new one.
  // A logged-out page never reuses a logged-in user's session, nor a page of another user.
  function session(forceRenew) {
    var current = saved.session;
    var user = userToken ? userOfToken(userToken) : null;
    if (current && current.user !== user) current = null;
    var left = current ? Date.parse(current.expires_at) - Date.now() : 0;
    if (current && left > RENEW_BEFORE_MS && !forceRenew) return Promise.resolve(current);
    var request = { site: site };
    if (current && left > 5000) request.session = current.token;
    else if (userToken) request.user_token = userToken;
    return post('/web/session', request).then(function (answer) {
      if (answer.status === 401 && request.session) {
        saved.session = null; // a session the server no longer accepts (its key changed): start again
        return session(false);
      }
      if (answer.status !== 201) throw new Error('session refused: ' + answer.status);
      saved.session = {
        token: answer.body.token,
        visitor_id: answer.body.visitor_id,
        expires_at: answer.body.expires_at,
        websocket: answer.body.websocket,
        user: user
      };
      save();
      return saved.session;
    });
  }

  function post(path, body, token) {
    var headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(base + path, { method: 'POST', headers: headers, body: JSON.stringify(body), cache: 'no-store' })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (json) {
          return { status: response.status, body: json, retryAfter: Number(response.headers.get('Retry-After')) };
        });
      });
  }

  // === connections ===

  function connect() {
    if (conn || retryTimer || !wanted) return;
    conn = { kind: 'pending', ready: false, close: function () {} };
    showState();
    session(failures > 0 && failures % 3 === 0).then(function (s) {
      conn = null;
      if (s.websocket !== false && !sseOnly && window.WebSocket) openWebSocket(s);
      else openEvents(s, false);
    }, function () {
      conn = null;
      lost(); // the server is unreachable: try again later
    });
  }

  function cursor() {
    return lastSeq ? '&after=' + encodeURIComponent(lastSeq) : '';
  }

  // Every frame both transports carry, after `ready`.
  function onFrame(frame, c) {
    if (frame.type === 'message') {
      lastSeq = frame.seq;
      showMessage(frame.message, true);
    } else if (frame.type === 'ack') {
      acknowledged(frame.client_id);
    } else if (frame.type === 'error' && frame.client_id) {
      refused(frame.client_id, frame.error && frame.error.code, frame.error && frame.error.retry_after);
    } else if (frame.type === 'pong') {
      c.pongDue = 0;
    }
  }

  // The bot's opening line from the `ready` frame: first in the list, once per page, never a stored message
  // (no `pfw-msg`, no sequence), so it neither counts as history nor as unread.
  function showGreeting(text) {
    if (!text || ui.log.querySelector('.pfw-greeting')) return;
    var item = el('li', 'pfw-greeting pfw-theirs');
    item.setAttribute('data-role', 'bot');
    item.appendChild(el('span', 'pfw-sender', t.bot));
    item.appendChild(el('span', 'pfw-text', text));
    ui.log.insertBefore(item, ui.log.firstChild);
  }

  function onReady(c, frame) {
    showGreeting(frame && frame.greeting);
    failures = 0;
    c.ready = true;
    showState();
    flush();
  }

  function openWebSocket(s) {
    var url = base.replace(/^http/, 'ws') + '/web/ws?token=' + encodeURIComponent(s.token) + cursor();
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      return openEvents(s, true); // blocked by the page's Content-Security-Policy, for one
    }
    var c = { kind: 'websocket', ready: false, close: function () { ws.close(); } };
    c.sendMessage = function (p) {
      ws.send(JSON.stringify({ type: 'message', client_id: p.id, text: p.text }));
    };
    conn = c;
    ws.onmessage = function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === 'ready') onReady(c, frame);
      else onFrame(frame, c);
    };
    var pinger = setInterval(function () {
      if (!c.ready) return;
      if (c.pongDue && Date.now() > c.pongDue) ws.close(); // the network dropped without telling us
      else if (!c.pongDue) {
        c.pongDue = Date.now() + PONG_WITHIN_MS;
        ws.send(JSON.stringify({ type: 'ping' }));
      }
    }, PING_EVERY_MS);
    ws.onclose = function () {
      clearInterval(pinger);
      if (conn !== c) return;
      conn = null;
      if (c.ready) lost();
      // Never opened: refused (websocket_disabled), or stripped by a proxy, or the server is down. The event
      // stream tells which: if it opens, this page stays on SSE.
      else openEvents(s, true);
    };
  }

  function openEvents(s, afterWebSocketFailed) {
    var events = new EventSource(base + '/web/events?token=' + encodeURIComponent(s.token) + cursor());
    var c = { kind: 'sse', ready: false, close: function () { events.close(); } };
    c.sendMessage = function (p) {
      post('/web/messages', { client_id: p.id, text: p.text }, s.token).then(function (answer) {
        if (answer.status === 200 || answer.status === 201) return acknowledged(p.id);
        var code = answer.body && answer.body.error && answer.body.error.code;
        if (answer.status === 401 || answer.status >= 500) {
          p.inFlight = null; // resent after the reconnect (with a fresh session when it expired)
          if (conn === c) drop(c);
        } else {
          refused(p.id, code, answer.retryAfter);
        }
      }, function () {
        p.inFlight = null; // the network failed: resent once a connection is back
        if (conn === c) drop(c);
      });
    };
    conn = c;
    events.addEventListener('ready', function (event) {
      if (afterWebSocketFailed) sseOnly = true;
      onReady(c, JSON.parse(event.data));
    });
    events.addEventListener('message', function (event) {
      onFrame(JSON.parse(event.data), c);
    });
    // A dropped stream, a refusal, or the server's own `error` event: reconnect on our own schedule, with our
    // cursor, instead of EventSource's (which gives up for good on an HTTP error).
    events.addEventListener('error', function () {
      if (conn === c) drop(c);
    });
  }

  function drop(c) {
    c.close();
    conn = null;
    lost();
  }

  function lost() {
    saved.pending.forEach(function (p) {
      if (p.inFlight && p.inFlight !== 'acked') p.inFlight = null;
    });
    failures += 1;
    showState();
    if (!wanted || retryTimer) return;
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, failures - 1));
    retryTimer = setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay * (0.5 + Math.random() / 2));
  }

  // Back online: reconnect now rather than at the end of the backoff.
  window.addEventListener('online', function () {
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = null;
      connect();
    }
  });
})();
