// imaged web console. Plain DOM, no framework, no build step. Every value
// that comes from the server is rendered with textContent or as a text
// node: never parsed as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'imaged.token';
  const PAGE = 25;

  // ---- small DOM helpers -------------------------------------------------

  const byId = (id) => document.getElementById(id);

  // el builds an element; children that are strings become text nodes.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'title' || k === 'type') e.setAttribute(k, v);
      else e.dataset[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function say(msg, kind) {
    const s = byId('status');
    s.textContent = msg || '';
    s.className = kind || '';
  }

  function fmtSize(n) {
    if (n === null || n === undefined) return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
  }

  // ---- token ---------------------------------------------------------------

  // A token may arrive in the URL fragment (#token=...&view=containers):
  // fragments are not sent to servers nor kept in Referer. It moves to
  // session storage and leaves the address bar at once. The fragment only
  // chooses what to show: it never triggers an action.
  let startView = 'vm';
  function fromFragment() {
    const f = new URLSearchParams(location.hash.replace(/^#/, ''));
    const v = f.get('view');
    if (v && ['vm', 'containers', 'upload', 'registries'].includes(v)) startView = v;
    if (f.has('token')) {
      sessionStorage.setItem(TOKEN_KEY, f.get('token'));
      history.replaceState(null, '', location.pathname + location.search);
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // ---- API -----------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // errorMessage reads both error shapes: the native API's
  // {"error": {"message"}} and Glance's {"message"}.
  async function errorMessage(resp) {
    const text = await resp.text();
    try {
      const j = JSON.parse(text);
      if (j && j.error && j.error.message) {
        return j.error.message + (j.error.request_id ? ' (request ' + j.error.request_id + ')' : '');
      }
      if (j && j.message) return String(j.message).replace(/<br \/>/g, ' ');
    } catch (e) { /* not JSON */ }
    return resp.status + ' ' + resp.statusText;
  }

  async function api(method, path, body) {
    const headers = { 'X-Auth-Token': token() || '', 'Accept': 'application/json' };
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    if (resp.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin();
      throw new APIError(401, 'The token was refused: log in again.');
    }
    if (!resp.ok) throw new APIError(resp.status, await errorMessage(resp));
    if (resp.status === 204) return null;
    return resp.json();
  }

  // safeNext follows only the API's own relative links.
  function safeNext(next) {
    return typeof next === 'string' && (next.startsWith('/v2/') || next.startsWith('/api/v1/')) ? next : null;
  }

  function query(form) {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim() !== '') q.set(k, String(v).trim());
    return q;
  }

  // ---- views ---------------------------------------------------------------

  const views = ['login', 'vm', 'containers', 'detail', 'upload', 'registries'];

  function show(view) {
    for (const v of views) byId(v + '-view').hidden = v !== view;
    for (const b of document.querySelectorAll('#nav button[data-view]')) {
      b.classList.toggle('current', b.dataset.view === view);
    }
  }

  function showLogin() {
    byId('nav').hidden = true;
    show('login');
  }

  function loggedIn() {
    byId('nav').hidden = false;
    openView(startView);
  }

  // openView shows a view and loads what it lists.
  function openView(view) {
    show(view);
    if (view === 'vm') loadVM(false);
    if (view === 'containers') loadContainers(false);
    if (view === 'registries') loadRegistries();
  }

  // ---- VM images -----------------------------------------------------------

  let vmNext = null;

  async function loadVM(more) {
    const rows = byId('vm-rows');
    let path;
    if (more && vmNext) {
      path = vmNext;
    } else {
      clear(rows);
      const q = query(byId('vm-filter'));
      q.set('limit', String(PAGE));
      path = '/v2/images?' + q.toString();
    }
    say('Loading VM images…');
    try {
      const page = await api('GET', path);
      for (const img of page.images || []) {
        const tr = el('tr', { class: 'clickable', id: img.id, onclick: () => showVM(img.id) },
          el('td', {}, img.name === null ? '(no name)' : img.name),
          el('td', {}, img.status),
          el('td', {}, img.visibility),
          el('td', {}, img.disk_format || ''),
          el('td', {}, img.container_format || ''),
          el('td', {}, fmtSize(img.size)),
          el('td', {}, img.created_at || ''),
          el('td', { class: 'mono' }, img.id));
        rows.append(tr);
      }
      vmNext = safeNext(page.next);
      byId('vm-more').hidden = !vmNext;
      say(rows.children.length + ' VM image(s)', 'ok');
    } catch (e) {
      say(e.message, 'error');
    }
  }

  function detail(title, obj, actions) {
    byId('detail-title').textContent = title;
    const dl = byId('detail-list');
    clear(dl);
    for (const k of Object.keys(obj).sort()) {
      let v = obj[k];
      if (v !== null && typeof v === 'object') v = JSON.stringify(v);
      dl.append(el('dt', {}, k), el('dd', { class: 'mono' }, v === null ? 'null' : String(v)));
    }
    if (actions) dl.append(el('dt', {}, 'actions'), el('dd', {}, ...actions));
    show('detail');
  }

  let back = 'vm';

  async function showVM(id) {
    try {
      const img = await api('GET', '/v2/images/' + encodeURIComponent(id));
      back = 'vm';
      detail(img.name === null ? img.id : img.name, img);
    } catch (e) {
      say(e.message, 'error');
    }
  }

  // ---- container images ----------------------------------------------------

  let ciNext = null;

  function ciActions(img, after) {
    const act = (label, method, suffix, confirmText, cls) => el('button', {
      type: 'button',
      class: cls || '',
      onclick: async (ev) => {
        ev.stopPropagation();
        if (confirmText && !window.confirm(confirmText)) return;
        try {
          await api(method, '/api/v1/container-images/' + encodeURIComponent(img.id) + suffix);
          say(label + ': ' + img.reference, 'ok');
          after();
        } catch (e) {
          say(label + ' failed: ' + e.message, 'error');
        }
      },
    }, label);
    const out = [];
    if (img.status === 'forgotten') out.push(act('Restore', 'POST', '/restore'));
    else out.push(act('Forget', 'POST', '/forget'));
    out.push(act('Purge', 'DELETE', '', 'Purge ' + img.reference + ' from its registry? This deletes the manifest.', 'danger'));
    return out;
  }

  async function loadContainers(more) {
    const rows = byId('ci-rows');
    let path;
    if (more && ciNext) {
      path = ciNext;
    } else {
      clear(rows);
      const q = query(byId('ci-filter'));
      q.set('limit', String(PAGE));
      path = '/api/v1/container-images?' + q.toString();
    }
    say('Loading container images…');
    try {
      const page = await api('GET', path);
      for (const img of page.images || []) {
        rows.append(el('tr', { class: 'clickable', id: img.id, onclick: () => showContainer(img.id) },
          el('td', { class: 'mono' }, img.reference),
          el('td', {}, img.architecture || ''),
          el('td', {}, img.status || ''),
          el('td', {}, fmtSize(img.size)),
          el('td', {}, ...ciActions(img, () => loadContainers(false)))));
      }
      ciNext = safeNext(page.next);
      byId('ci-more').hidden = !ciNext;
      say(rows.children.length + ' container image(s)', 'ok');
    } catch (e) {
      say(e.message, 'error');
    }
  }

  async function showContainer(id) {
    try {
      const img = await api('GET', '/api/v1/container-images/' + encodeURIComponent(id));
      back = 'containers';
      detail(img.reference, img, ciActions(img, () => showContainer(id)));
    } catch (e) {
      say(e.message, 'error');
    }
  }

  // ---- upload --------------------------------------------------------------

  let uploading = null;

  function upload(ev) {
    ev.preventDefault();
    const form = byId('upload-form');
    const file = form.elements.file.files[0];
    if (!file) return;
    // Text fields first, then size, then the file: the server creates the
    // image when the file part arrives and streams it.
    const fd = new FormData();
    for (const k of ['name', 'disk_format', 'container_format', 'visibility']) {
      const v = form.elements[k].value;
      if (v !== '') fd.append(k, v);
    }
    fd.append('size', String(file.size));
    fd.append('file', file, file.name);

    const bar = byId('upload-progress');
    const result = byId('upload-result');
    const xhr = new XMLHttpRequest();
    uploading = xhr;
    xhr.open('POST', '/api/v1/uploads');
    xhr.setRequestHeader('X-Auth-Token', token() || '');
    xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
    });
    const done = () => {
      uploading = null;
      byId('upload-go').disabled = false;
      byId('upload-cancel').hidden = true;
    };
    xhr.addEventListener('load', () => {
      done();
      let j = null;
      try { j = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201 && j) {
        result.className = 'ok';
        result.textContent = 'Uploaded ' + (j.name || j.id) + ': ' + j.id + ', ' + j.status + ', ' + fmtSize(j.size) + ', ' + (j.os_hash_algo || '') + ' ' + (j.os_hash_value || '');
      } else {
        result.className = 'error';
        result.textContent = 'Upload failed (' + xhr.status + '): ' + (j && j.error ? j.error.message : xhr.statusText);
        if (xhr.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin(); }
      }
    });
    xhr.addEventListener('error', () => { done(); result.className = 'error'; result.textContent = 'Upload failed: the connection broke.'; });
    xhr.addEventListener('abort', () => { done(); result.className = 'error'; result.textContent = 'Upload cancelled; the image is left queued.'; });
    bar.hidden = false;
    bar.value = 0;
    result.textContent = '';
    byId('upload-go').disabled = true;
    byId('upload-cancel').hidden = false;
    xhr.send(fd);
  }

  // ---- registries and rescans ------------------------------------------

  async function loadRegistries() {
    const rows = byId('reg-rows');
    clear(rows);
    try {
      const page = await api('GET', '/api/v1/registries');
      for (const r of page.registries || []) {
        rows.append(el('tr', {},
          el('td', {}, r.name),
          el('td', { class: 'mono' }, r.url),
          el('td', {}, r.type || ''),
          el('td', {}, el('button', { type: 'button', onclick: () => rescan(r.name) }, 'Rescan'))));
      }
      say(rows.children.length + ' registr' + (rows.children.length === 1 ? 'y' : 'ies'), 'ok');
    } catch (e) {
      say(e.message, 'error');
    }
  }

  let polling = null;

  // rescan starts a registry rescan and polls its task every second
  // (EventSource cannot send the token header).
  async function rescan(name) {
    if (polling) clearTimeout(polling);
    try {
      const task = await api('POST', '/api/v1/registries/' + encodeURIComponent(name) + '/rescan');
      byId('task').hidden = false;
      byId('task-title').textContent = 'Rescan of ' + name;
      follow(task.id);
    } catch (e) {
      say('Rescan failed: ' + e.message, 'error');
    }
  }

  async function follow(id) {
    polling = null;
    let t;
    try {
      t = await api('GET', '/api/v1/tasks/' + encodeURIComponent(id));
    } catch (e) {
      say(e.message, 'error');
      return;
    }
    const bar = byId('task-progress');
    const p = t.progress || { done: 0, total: 0 };
    bar.max = Math.max(p.total, 1);
    bar.value = p.total ? p.done : 0;
    byId('task-state').textContent = t.status + ': ' + p.done + ' of ' + p.total + (t.message ? ' — ' + t.message : '');
    const errs = byId('task-errors');
    clear(errs);
    for (const e of t.errors || []) errs.append(el('li', { class: 'error' }, e));
    if (t.status === 'pending' || t.status === 'processing') {
      polling = setTimeout(() => follow(id), 1000);
    } else {
      say('Rescan ' + t.status, t.status === 'success' ? 'ok' : 'error');
    }
  }

  // ---- wiring --------------------------------------------------------------

  function init() {
    fromFragment();
    byId('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, byId('token').value);
      byId('token').value = '';
      loggedIn();
    });
    byId('logout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      say('Logged out.');
      showLogin();
    });
    for (const b of document.querySelectorAll('#nav button[data-view]')) {
      b.addEventListener('click', () => openView(b.dataset.view));
    }
    byId('vm-filter').addEventListener('submit', (ev) => { ev.preventDefault(); loadVM(false); });
    byId('vm-more').addEventListener('click', () => loadVM(true));
    byId('ci-filter').addEventListener('submit', (ev) => { ev.preventDefault(); loadContainers(false); });
    byId('ci-more').addEventListener('click', () => loadContainers(true));
    byId('detail-back').addEventListener('click', () => show(back));
    byId('upload-form').addEventListener('submit', upload);
    byId('upload-cancel').addEventListener('click', () => { if (uploading) uploading.abort(); });
    if (token() !== null) loggedIn(); else showLogin();
  }

  init();
}());
