// streamseg web page: plain ES module, no build step. Talks to the /v1 API with the token the
// user enters (kept in localStorage, and in a SameSite=Strict cookie for <video>, EventSource
// and bull-board, which cannot send an Authorization header).
const TOKEN_KEY = 'streamseg_token';
const $ = (selector) => document.querySelector(selector);

let token = localStorage.getItem(TOKEN_KEY) ?? '';
// What the page knows of the token: 'missing' (none entered), 'unchecked', 'refused' (the API answered 401), 'accepted'.
let tokenStatus = token ? 'unchecked' : 'missing';
let selected = null;
let videosHtml = null;
let events = null;
let hls = null;
const liveScenes = new Map();

// A same-origin path to go back to once a token is accepted (/web/?return=/admin/queues, as the
// server's "token needed" page links here); anything else is ignored.
const returnTo = (() => {
  const value = new URLSearchParams(location.search).get('return');
  if (!value) return null;
  try {
    const url = new URL(value, location.origin);
    return url.origin === location.origin && url.pathname !== location.pathname ? url.pathname + url.search : null;
  } catch {
    return null;
  }
})();

const TOKEN_FIELD = '<label for="token" class="to-field">API token field at the top</label>';
const NOTICES = {
  missing: `<h2>An API token is needed</h2>
    <p>This server shows videos and queues only to requests that carry one of the tokens in its
    <code>STREAMSEG_API_TOKENS</code> setting; ask whoever runs <code>streamseg serve</code> for one.
    Enter it in the ${TOKEN_FIELD} and press <strong>Use</strong>. This browser keeps it for your next visit.</p>`,
  refused: `<h2>The token was refused (401)</h2>
    <p>The server answered 401: the token entered is not one of the tokens in its <code>STREAMSEG_API_TOKENS</code>
    setting. Check it for typos, or ask whoever runs <code>streamseg serve</code> for one, and enter it in the
    ${TOKEN_FIELD}.</p>`,
};

/** Shows what the token's state means: the notice above the tables, and why the tables are empty. */
function showTokenStatus(status) {
  tokenStatus = status;
  $('#token-state').textContent = { refused: 'token refused', accepted: 'token accepted' }[status] ?? '';
  const notice = $('#auth-notice');
  if (status === 'missing' || status === 'refused') {
    notice.innerHTML = NOTICES[status];
    notice.hidden = false;
    videosHtml = null;
    $('#videos tbody').innerHTML = '<tr class="empty"><td colspan="6">Enter an API token (at the top of the page) to list the videos.</td></tr>';
    $('#queues tbody').innerHTML = '<tr class="empty"><td colspan="7">Enter an API token (at the top of the page) to see the queues.</td></tr>';
  } else if (status === 'accepted' && returnTo) {
    notice.innerHTML = `<p>Token accepted. Back to <a href="${escapeHtml(returnTo)}">${escapeHtml(returnTo)}</a>.</p>`;
    notice.hidden = false;
  } else {
    notice.hidden = true;
  }
}

function setToken(value) {
  token = value.trim();
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    document.cookie = `${TOKEN_KEY}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  } else {
    localStorage.removeItem(TOKEN_KEY);
    document.cookie = `${TOKEN_KEY}=; path=/; SameSite=Strict; max-age=0`;
  }
  showTokenStatus(token ? 'unchecked' : 'missing');
}

/** Whether the page may call the API: a token is entered and the server has not refused it. */
const tokenUsable = () => tokenStatus === 'unchecked' || tokenStatus === 'accepted';

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers ?? {}), authorization: `Bearer ${token}` } });
  if (response.status === 401) {
    showTokenStatus('refused');
    throw new Error('unauthorized');
  }
  if (tokenStatus !== 'accepted') showTokenStatus('accepted');
  const body = response.headers.get('content-type')?.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`);
  return body;
}

function bar(stage) {
  const pct = stage.fraction === null ? 0 : Math.round(stage.fraction * 100);
  const total = stage.total === null ? '?' : stage.total;
  return `<div class="bar" title="${stage.done}/${total}"><span style="width:${pct}%"></span><em>${stage.done}/${total}</em></div>`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

async function refreshVideos() {
  if (!tokenUsable()) return;
  const { videos } = await api('/v1/videos?limit=25');
  // Each row opens its video: a click anywhere on it, or Enter / Space when it has the focus (one
  // Tab stop per row: the id link is for screen readers' link lists and middle-click).
  const rows = videos.map(
    (v) => `
    <tr data-id="${escapeHtml(v.id)}" data-testid="video-row" data-status="${v.status}" tabindex="0" class="${v.id === selected ? 'selected' : ''}"${v.id === selected ? ' aria-current="true"' : ''}>
      <td><a href="#${escapeHtml(v.id)}" tabindex="-1">${escapeHtml(v.id)}</a></td>
      <td class="status-${v.status}" data-testid="video-status">${v.status}${v.error ? ` <small title="${escapeHtml(v.error)}">(${escapeHtml(v.error.split(':')[0])})</small>` : ''}</td>
      <td>${bar(v.stages.decode)}</td><td>${bar(v.stages.segment)}</td><td>${bar(v.stages.sink)}</td>
      <td>${v.status === 'done' || v.status === 'failed' || v.status === 'cancelled' ? '' : `${v.live ? `<button data-stop="${escapeHtml(v.id)}">stop</button> ` : ''}<button data-cancel="${escapeHtml(v.id)}">cancel</button>`}</td>
    </tr>`,
  );
  const html = rows.length ? rows.join('') : '<tr class="empty"><td colspan="6">No videos yet: submit one above.</td></tr>';
  if (html === videosHtml) return;
  videosHtml = html;
  // The list is redrawn while someone may be on it with the keyboard: keep the focus where it was.
  const focused = document.activeElement?.closest?.('#videos tbody tr[data-id]') ? document.activeElement : null;
  const focusedId = focused?.closest('tr').dataset.id;
  const focusedButton = focused?.dataset.stop ? 'data-stop' : focused?.dataset.cancel ? 'data-cancel' : null;
  $('#videos tbody').innerHTML = html;
  if (focusedId !== undefined) {
    const row = [...document.querySelectorAll('#videos tbody tr[data-id]')].find((r) => r.dataset.id === focusedId);
    (focusedButton ? row?.querySelector(`button[${focusedButton}]`) : null)?.focus({ preventScroll: true }) ?? row?.focus({ preventScroll: true });
  }
}

async function refreshQueues() {
  if (!tokenUsable()) return;
  const { queues } = await api('/v1/queues');
  $('#queues tbody').innerHTML = queues
    .map(
      (q) =>
        `<tr data-testid="queue-row"><td>${escapeHtml(q.name)}${q.paused ? ' (paused)' : ''}</td><td>${q.counts.waiting + q.counts.prioritized}</td><td>${q.counts.active}</td><td>${q.counts.delayed}</td><td>${q.counts.completed}</td><td>${q.counts.failed}</td><td>${q.workers.length}</td></tr>`,
    )
    .join('');
}

function colorOf(adapters) {
  if (!adapters.length) return '#8a8f99';
  const name = adapters.map((a) => a.name).join('+');
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${h} 55% 42%)`;
}

function renderScenes(scenes, totalFrames) {
  const total = Math.max(1, totalFrames ?? scenes.reduce((n, s) => Math.max(n, s.endFrame), 0));
  $('#timeline').innerHTML = scenes
    .map((s) => {
      const label = s.adapters.length ? s.adapters.map((a) => `${a.name} ${a.weight.toFixed(2)}`).join(' + ') : 'base model';
      return `<div data-testid="scene-block" style="width:${((s.endFrame - s.startFrame) / total) * 100}%;background:${colorOf(s.adapters)}" title="scene ${s.index}: frames ${s.startFrame}-${s.endFrame - 1}, ${escapeHtml(label)}">${s.index}: ${escapeHtml(label)}</div>`;
    })
    .join('');
  $('#scenes tbody').innerHTML = scenes
    .map(
      (s) =>
        `<tr data-testid="scene-row"><td>${s.index}</td><td>${s.startFrame}–${s.endFrame - 1} (${s.frames})</td><td>${s.adapters.length ? s.adapters.map((a) => `${escapeHtml(a.name)} (${a.weight.toFixed(2)})`).join(', ') : 'base model (no adapter)'}</td></tr>`,
    )
    .join('');
}

function addLiveFrame(record) {
  const last = [...liveScenes.values()].at(-1);
  if (last && last.index === record.scene && last.endFrame === record.index) {
    last.endFrame++;
    last.frames++;
  } else if (!liveScenes.has(`${record.scene}:${record.index}`)) {
    liveScenes.set(`${record.scene}:${record.index}`, {
      index: record.scene,
      startFrame: record.index,
      endFrame: record.index + 1,
      frames: 1,
      adapters: record.adapters,
    });
  }
}

function showPlayer(view) {
  const video = $('#player');
  if (hls) {
    hls.destroy();
    hls = null;
  }
  if (view.status === 'done' && !view.live) {
    video.src = view.outputs.annotated;
    $('#player-note').textContent = 'annotated.mp4';
  } else if (view.outputs.hls && window.Hls?.isSupported()) {
    hls = new window.Hls({ xhrSetup: (xhr) => xhr.setRequestHeader('authorization', `Bearer ${token}`) });
    hls.loadSource(view.outputs.hls);
    hls.attachMedia(video);
    $('#player-note').textContent = view.live ? 'live source (HLS)' : 'live (HLS) while the video is produced';
  } else {
    video.removeAttribute('src');
    $('#player-note').textContent = 'the annotated video appears here when it is done';
  }
}

async function showReport(view) {
  const report = await api(view.outputs.report);
  renderScenes(report.scenes, report.frames);
  $('#links').innerHTML = ['annotated', 'masks', 'report']
    .map((k) => `<a href="${view.outputs[k]}" target="_blank" rel="noopener">${view.outputs[k].split('/').pop()}</a>`)
    .join('');
}

function select(id) {
  if (!tokenUsable() || !id) return;
  selected = id;
  events?.close();
  liveScenes.clear();
  $('#detail').hidden = false;
  $('#detail').scrollIntoView({ block: 'nearest' });
  $('#detail-id').textContent = id;
  $('#timeline').innerHTML = '';
  $('#scenes tbody').innerHTML = '';
  $('#links').innerHTML = '';
  let lastStatus = null;
  // EventSource sends the token cookie; it resumes by itself with Last-Event-ID after a drop.
  events = new EventSource(`/v1/videos/${encodeURIComponent(id)}/events`);
  const onView = (view) => {
    $('#detail-status').textContent = view.status;
    $('#detail-status').className = `status-${view.status}`;
    if (view.status !== lastStatus) {
      lastStatus = view.status;
      showPlayer(view);
    }
  };
  events.addEventListener('progress', (e) => onView(JSON.parse(e.data)));
  events.addEventListener('frame', (e) => {
    addLiveFrame(JSON.parse(e.data));
    renderScenes([...liveScenes.values()]);
  });
  const finish = (e) => {
    events.close();
    const view = JSON.parse(e.data);
    onView(view);
    if (view.status === 'done') showReport(view).catch((error) => ($('#links').textContent = error.message));
  };
  for (const name of ['done', 'failed', 'cancelled']) events.addEventListener(name, finish);
  refreshVideos().catch(() => undefined);
}

$('#token').value = token;
setToken(token);
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken($('#token').value);
  refreshVideos().catch(() => undefined);
  refreshQueues().catch(() => undefined);
});

$('#submit-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const state = $('#submit-state');
  const options = {};
  if ($('#fps').value) options.fps = $('#fps').value;
  if ($('#classes').value.trim()) options.classes = $('#classes').value.trim();
  if ($('#topk').value) options.topK = $('#topk').value;
  if ($('#merge').value) options.merge = $('#merge').value;
  if ($('#no-adapters').checked) options.adapters = 'false';
  try {
    state.textContent = 'submitting…';
    let result;
    const file = $('#file').files[0];
    if (file) {
      const form = new FormData();
      for (const [k, v] of Object.entries(options)) form.append(k, v);
      form.append('file', file);
      result = await api('/v1/videos', { method: 'POST', body: form });
    } else if ($('#url').value) {
      result = await api('/v1/videos', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: $('#url').value, ...options }),
      });
    } else {
      state.textContent = 'choose a file or enter a URL';
      return;
    }
    state.textContent = `${result.deduplicated ? 'already submitted' : 'submitted'}: ${result.id}`;
    location.hash = result.id;
  } catch (error) {
    state.textContent = error.message;
  }
});

$('#videos').addEventListener('click', async (e) => {
  const stop = e.target.closest('button[data-stop]');
  if (stop) {
    stop.disabled = true;
    await api(`/v1/videos/${encodeURIComponent(stop.dataset.stop)}/stop`, { method: 'POST' }).catch((error) => alert(error.message));
    return;
  }
  const cancel = e.target.closest('button[data-cancel]');
  if (cancel) {
    cancel.disabled = true;
    await api(`/v1/videos/${encodeURIComponent(cancel.dataset.cancel)}`, { method: 'DELETE' }).catch((error) => alert(error.message));
    refreshVideos().catch(() => undefined);
    return;
  }
  if (e.target.closest('a, button, input, select, textarea')) return;
  const row = e.target.closest('tbody tr[data-id]');
  if (row) openVideo(row.dataset.id);
});
$('#videos').addEventListener('keydown', (e) => {
  // Only on the row itself: Enter on its buttons keeps their meaning.
  if ((e.key !== 'Enter' && e.key !== ' ') || !e.target.matches?.('tbody tr[data-id]')) return;
  e.preventDefault();
  openVideo(e.target.dataset.id);
});

/** Opens a video from the list: through the URL's hash, so the back button and links work alike. */
function openVideo(id) {
  if (location.hash.slice(1) !== id) location.hash = id;
  else select(id);
}

window.addEventListener('hashchange', () => select(location.hash.slice(1)));
if (location.hash.length > 1) select(location.hash.slice(1));
const loop = (fn, ms) => {
  const tick = () =>
    fn()
      .catch(() => undefined)
      .finally(() => setTimeout(tick, ms));
  tick();
};
loop(refreshVideos, 1000);
loop(refreshQueues, 2000);
