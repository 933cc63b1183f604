/* Server-sent events: one list of the calls in progress each second. */
const body = document.getElementById("live");
const feed = new EventSource("/direct/flux");
feed.onmessage = (e) => {
  const calls = JSON.parse(e.data);
  body.replaceChildren();
  if (!calls.length) { const tr = body.insertRow(); const td = tr.insertCell(); td.colSpan = 4; td.textContent = "Aucun appel en cours."; return; }
  for (const c of calls) {
    const tr = body.insertRow();
    const link = document.createElement("a");
    link.href = "/appels/" + c.id; link.textContent = c.caller;
    tr.insertCell().append(link);
    for (const v of [c.stage, c.urgency, Math.floor(c.seconds / 60) + " min " + (c.seconds % 60) + " s"]) tr.insertCell().textContent = v;
  }
};
