// The web phone's page: it only shows and plays. Every caller action goes to the server,
// which runs the simulator and renders the audio; the page plays it in order, with pauses as
// silence, and reports keys, the Gather's timeout and hang-ups back.
"use strict";

// DTMF: the standard row and column frequencies (Hz)
const DTMF = {
  "1": [697, 1209], "2": [697, 1336], "3": [697, 1477],
  "4": [770, 1209], "5": [770, 1336], "6": [770, 1477],
  "7": [852, 1209], "8": [852, 1336], "9": [852, 1477],
  "*": [941, 1209], "0": [941, 1336], "#": [941, 1477],
};
const $ = (sel) => document.querySelector(sel);
let hello = { speed: 1 };
let ctx = null;              // the AudioContext for tones
let inCall = false;
let gather = null;           // the waiting Gather, as the server describes it
let run = 0;                 // bumps when what plays is cut short or replaced
let current = null;          // the <audio> playing now
let timer = null;            // the Gather's timeout (or the hold's next step)
let busy = Promise.resolve();
let position = { at: 0, since: 0 };  // the line's virtual time where the playing item began

function setPhase(phase) { document.body.dataset.phase = phase; }
function phase() { return document.body.dataset.phase; }
function status(text) { $("#status").textContent = text; }

function tone(freqs, ms) {
  try {
    ctx = ctx || new AudioContext();
    const gain = ctx.createGain();
    gain.gain.value = 0.12;
    gain.connect(ctx.destination);
    const end = ctx.currentTime + ms / 1000;
    for (const f of freqs) {
      const osc = ctx.createOscillator();
      osc.frequency.value = f;
      osc.connect(gain);
      osc.start();
      osc.stop(end);
    }
  } catch (e) { /* no audio output: the page still works */ }
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const scaled = (seconds) => Math.max(0, seconds) * 1000 / hello.speed;

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const reply = await fetch(path, init);
  const data = await reply.json();
  if (!reply.ok) throw new Error(data.error || reply.status);
  return data;
}

function addLines(lines) {
  const body = $("#transcript tbody");
  for (const line of lines) {
    const row = document.createElement("tr");
    row.className = line.kind === "said" ? "said" : (line.kind === "keys" ? "keys" :
      (line.kind === "error" || line.kind === "warning" ? "error" : "mark"));
    row.dataset.kind = line.kind;
    const clock = document.createElement("td");
    clock.className = "clock";
    clock.textContent = line.clock;
    const text = document.createElement("td");
    text.className = "text";
    text.textContent = line.kind === "said" ? line.text : `(${line.kind}) ${line.text}`;
    row.append(clock, text);
    body.append(row);
  }
  const pane = $("#transcriptpane");
  pane.scrollTop = pane.scrollHeight;
}

function showFlow(answer) {
  const flow = $("#flow");
  if (answer.svg !== undefined && answer.svg !== null) flow.innerHTML = answer.svg;
  const state = answer.state || "";
  flow.dataset.state = state;
  $("#state").textContent = state ? `— now: ${state}` : "";
  const path = $("#path");
  path.textContent = "";
  for (const [src, trig, dest] of answer.path || []) {
    const li = document.createElement("li");
    li.textContent = src ? `${trig} → ${dest}` : dest;
    path.append(li);
  }
  for (const [digits, url] of answer.documents || []) {
    if (answer.path && answer.path.length) break;
    const li = document.createElement("li");
    li.textContent = digits ? `${digits} → ${url}` : url;
    path.append(li);
  }
  path.scrollTop = path.scrollHeight;
  if (!hello.hotline) return;
  const visited = new Set((answer.path || []).map((p) => p[2]));
  const taken = new Set((answer.path || []).map((p) => `${p[0]}->${p[2]}`));
  let here = null;
  for (const node of flow.querySelectorAll("g.node")) {
    const name = node.querySelector("title").textContent;
    node.classList.toggle("visited", visited.has(name));
    node.classList.toggle("current", name === state);
    if (name === state) here = node;
  }
  for (const edge of flow.querySelectorAll("g.edge")) {
    edge.classList.toggle("taken", taken.has(edge.querySelector("title").textContent));
  }
  if (here && !flow.classList.contains("fit")) {
    here.scrollIntoView({ block: "center", inline: "center" });
  }
}

function stopPlaying() {
  run += 1;
  if (current) {
    current.dataset.cut = "1";
    current.pause();
    current = null;
  }
  clearTimeout(timer);
}

function playAudio(item, mine) {
  return new Promise((done) => {
    const audio = document.createElement("audio");
    audio.src = item.audio;
    audio.preload = "auto";
    audio.dataset.text = item.text;
    audio.playbackRate = hello.speed;
    $("#audio").append(audio);
    current = audio;
    audio.addEventListener("ended", () => { audio.dataset.ended = "1"; done(); });
    audio.addEventListener("pause", () => { if (audio.dataset.cut) done(); });
    audio.addEventListener("error", () => sleep(scaled(item.seconds)).then(done));
    audio.play().catch(() => sleep(scaled(item.seconds)).then(done));
    if (mine !== run) done();
  });
}

async function playItem(item, mine) {
  $("#now").textContent = item.kind === "play" && !item.audio ? `♪ ${item.url}` : item.text;
  if (item.kind === "digits") {
    for (const key of item.digits) {
      if (mine !== run) return;
      if (DTMF[key]) tone(DTMF[key], scaled(0.15));
      await sleep(scaled(key === "w" || key === "W" ? 0.5 : 0.2));
    }
  } else if (item.audio) {
    await playAudio(item, mine);
  } else {
    if (item.kind === "play") tone([440], 300);   // a file this machine cannot reach
    await sleep(scaled(item.seconds));
  }
}

async function playTurn(answer) {
  const mine = run;
  let end = answer.items.length ? answer.items[0].at : 0;
  for (const item of answer.items) {
    if (mine !== run) return;
    await sleep(scaled(item.at - end));      // a <Pause>: silence
    if (mine !== run) return;
    setPhase(item.barge ? "prompt" : "before");
    position = { at: item.at, since: performance.now() };
    await playItem(item, mine);
    end = item.at + item.seconds;
  }
  if (mine !== run) return;
  if (answer.gather) await sleep(scaled(answer.gather.listen_at - end));
  if (mine !== run) return;
  afterPlaying(answer);
}

function afterPlaying(answer) {
  if (answer.ended) return;
  if (answer.gather) {
    setPhase("listening");
    status(`listening: ${describe(answer.gather)}`);
    wait(answer.gather.timeout);
  } else if (answer.hold || answer.recording) {
    setPhase(answer.hold ? "hold" : "recording");
    status(answer.hold ? "on hold" : "recording: press a key to end");
    wait(answer.hold ? 0.5 : 5);
  }
}

function describe(g) {
  if (!g.keys) return "speech only (not on this phone)";
  let what = g.num_digits === 1 ? "one key" : (g.num_digits ? `${g.num_digits} keys` : "keys");
  if (g.finish_on_key && g.num_digits !== 1) what += `, end with ${g.finish_on_key}`;
  return `${what} · silence after ${g.timeout} s`;
}

function wait(seconds) {
  clearTimeout(timer);
  timer = setTimeout(() => act(() => api("api/timeout", {})), scaled(seconds));
}

function take(answer) {
  addLines(answer.lines);
  if (!answer.new) return;
  stopPlaying();
  gather = answer.gather;
  showFlow(answer);
  $("#typed").textContent = "";
  if (answer.ended) {
    inCall = false;
    setPhase("ended");
    status("call ended · press call to call again");
    $("#call").disabled = false;
    $("#hangup").disabled = true;
  }
  playTurn(answer);
}

// one action at a time, in the order the person made them
function act(request) {
  busy = busy.then(request).then(take).catch((e) => {
    addLines([{ clock: "", kind: "error", text: String(e.message || e) }]);
  });
  return busy;
}

function press(key) {
  tone(DTMF[key], 150);
  const button = document.querySelector(`.key[data-key="${CSS.escape(key)}"]`);
  if (button) { button.classList.add("down"); setTimeout(() => button.classList.remove("down"), 150); }
  if (!inCall) return;
  clearTimeout(timer);
  const now = phase();
  const at = position.at + (performance.now() - position.since) * hello.speed / 1000;
  act(async () => {
    const answer = await api("api/key", { key, phase: now, at });
    if (!answer.new && answer.pending) {
      if (now === "prompt") stopPlaying();   // barge-in: the prompt stops at the first key
      $("#typed").textContent = answer.pending;
      setPhase("listening");
      status(`listening: ${describe(gather)}`);
      wait(gather.timeout);                  // the Gather's timeout runs from the last key
    }
    return answer;
  });
}

function call() {
  if (inCall) return;
  inCall = true;
  $("#call").disabled = true;
  $("#hangup").disabled = false;
  $("#audio").textContent = "";
  $("#transcript tbody").textContent = "";
  status("calling…");
  setPhase("calling");
  tone([440, 480], 400);                     // ringback
  act(() => api("api/call", {}));
}

function hangup() {
  if (!inCall) return;
  stopPlaying();
  act(() => api("api/hangup", {}));
}

async function start() {
  hello = await api("api/hello");
  $("#where").textContent = hello.where;
  $("#zone").textContent = `times: ${hello.zone}`;
  if (hello.svg) $("#flow").innerHTML = hello.svg;
  if (!hello.speech.available) {
    const box = $("#novoice");
    box.hidden = false;
    box.textContent = "No voice on this machine: what the line says is shown as text, " +
      "key tones still play. To hear it: ";
    const code = document.createElement("code");
    code.textContent = hello.speech.how;
    box.append(code, " then start ivr12333 phone again.");
  }
  document.querySelectorAll(".key").forEach((b) =>
    b.addEventListener("click", () => press(b.dataset.key)));
  $("#call").addEventListener("click", call);
  $("#hangup").addEventListener("click", hangup);
  $("#fit").addEventListener("click", () => {
    const fit = $("#flow").classList.toggle("fit");
    $("#fit").textContent = fit ? "around the caller" : "whole flow";
  });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (DTMF[e.key]) { press(e.key); e.preventDefault(); }
    else if (e.key === "Enter") { call(); e.preventDefault(); }
    else if (e.key === "Escape") { hangup(); e.preventDefault(); }
  });
  document.body.dataset.ready = "1";
}

start();
