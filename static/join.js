// The join page: looks the conference up, takes a display name and joins.
// The code is the last part of this page's path.
const code = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
const $ = (id) => document.getElementById(id);

const STATES = {
  30: '会议尚未开始 · The conference has not started yet',
  31: '会议已结束 · The conference has ended',
  32: '会议不存在，请检查链接 · No such conference: check the link',
};

function show(el, text, cls) {
  el.textContent = text;
  el.className = cls || '';
}

async function lookup() {
  const res = await fetch(`/gzbwclient/conference/${encodeURIComponent(code)}?format=json`, {
    headers: { Accept: 'application/json' },
  });
  if (res.status === 429) {
    show($('state'), '尝试次数过多，请稍后再试 · Too many attempts: try again later', 'error');
    return;
  }
  const body = await res.json();
  if (body.state === 0) {
    $('title').textContent = body.confName;
    show($('state'), '会议进行中 · The conference is live', 'state');
    $('join').hidden = false;
    $('name').focus();
  } else {
    show($('state'), STATES[body.state] || `state ${body.state}`, 'error');
  }
}

$('join').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('go').disabled = true;
  try {
    const res = await fetch(`/gzbwclient/conference/${encodeURIComponent(code)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ name: $('name').value }),
    });
    const body = await res.json();
    if (res.ok && body.accessToken) {
      sessionStorage.setItem('confgate.session', JSON.stringify(body));
      show($('result'), `已加入，${body.name} · Joined as ${body.name}`, 'ok');
      $('join').hidden = true;
    } else if (body.state && STATES[body.state]) {
      show($('result'), STATES[body.state], 'error');
    } else {
      show($('result'), body.error || `error ${res.status}`, 'error');
    }
  } catch (e) {
    show($('result'), `网络错误 · Network error: ${e.message}`, 'error');
  } finally {
    $('go').disabled = false;
  }
});

lookup().catch((e) => show($('state'), `网络错误 · Network error: ${e.message}`, 'error'));
