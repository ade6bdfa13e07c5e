// The board: filters, live updates over Server-Sent Events, a beep on a new critical alarm.
// The alarm page: the readings chart (plotly, served by this server).
(function () {
  "use strict";
  var prefix = document.body.dataset.prefix;

  function applyFilters() {
    var rows = document.querySelectorAll("#board-rows tr.row");
    var chosen = {};
    document.querySelectorAll("[data-filter]").forEach(function (s) { chosen[s.dataset.filter] = s.value; });
    var shown = 0;
    rows.forEach(function (row) {
      var ok = Object.keys(chosen).every(function (k) { return !chosen[k] || row.dataset[k] === chosen[k]; });
      row.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    var empty = document.getElementById("empty");
    if (empty) { empty.classList.toggle("shown", shown === 0); }
  }

  function age(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s >= 3600) { return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m"; }
    return s >= 60 ? Math.floor(s / 60) + "m" : s + "s";
  }

  function markOverdue() {  // deadlines pass and ages grow between pushes: kept here
    var now = Date.now(), open = 0, late = 0;
    document.querySelectorAll("#board-rows tr.row").forEach(function (row) {
      if (Number(row.dataset.due) < now) { row.classList.add("overdue"); }
      var cell = row.querySelector(".age");
      if (cell) { cell.textContent = age(now - Number(row.dataset.raised)); }
      if (!row.classList.contains("hidden")) {
        open += 1;
        if (row.classList.contains("overdue")) { late += 1; }
      }
    });
    var o = document.getElementById("count-open"), l = document.getElementById("count-overdue");
    if (o) { o.textContent = String(open); l.textContent = String(late); }
  }

  function criticalIds() {
    var ids = new Set();
    document.querySelectorAll('#board-rows tr.row[data-severity="critical"]').forEach(function (r) { ids.add(r.dataset.id); });
    return ids;
  }

  var audio = null;
  function beep() {
    var sound = document.getElementById("sound");
    if (!sound || !sound.checked) { return; }
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    [0, 0.35, 0.7].forEach(function (at) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = "square"; osc.frequency.value = 880;
      gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(audio.currentTime + at); osc.stop(audio.currentTime + at + 0.2);
    });
    window.gridalarmBeeps = (window.gridalarmBeeps || 0) + 1;
  }

  function board() {
    var tbody = document.getElementById("board-rows");
    var live = document.getElementById("live");
    if (!tbody || !live) { return; }
    var sound = document.getElementById("sound");
    sound.checked = localStorage.getItem("gridalarm.sound") === "1";
    sound.addEventListener("change", function () {
      localStorage.setItem("gridalarm.sound", sound.checked ? "1" : "0");
      if (sound.checked) { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); }
    });
    // the filters live in the address (#grid=…&state=…): a wall screen keeps its own after a reload
    var wanted = new URLSearchParams(location.hash.slice(1));
    document.querySelectorAll("[data-filter]").forEach(function (s) {
      if (wanted.has(s.dataset.filter)) { s.value = wanted.get(s.dataset.filter); }
      s.addEventListener("change", function () {
        var chosen = new URLSearchParams();
        document.querySelectorAll("[data-filter]").forEach(function (f) { if (f.value) { chosen.set(f.dataset.filter, f.value); } });
        history.replaceState(null, "", "#" + chosen.toString());
        applyFilters(); markOverdue();
      });
    });
    applyFilters(); markOverdue();
    setInterval(function () { markOverdue(); }, 1000);
    var known = criticalIds();
    var source = new EventSource(prefix + "/events?v=" + live.dataset.version);
    source.addEventListener("board", function (event) {
      tbody.innerHTML = event.data;
      live.dataset.version = event.lastEventId;
      applyFilters(); markOverdue();
      var now = criticalIds(), fresh = false;
      now.forEach(function (id) { if (!known.has(id)) { fresh = true; } });
      known = now;
      if (fresh) { beep(); }
    });
    source.onopen = function () { live.classList.remove("down"); };
    source.onerror = function () { live.classList.add("down"); };
  }

  function chart() {
    var box = document.getElementById("chart");
    if (!box || !window.Plotly) { return; }
    fetch(box.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      var traces = Object.keys(data.series).map(function (name) {
        var s = data.series[name];
        var flag = s.v.every(function (v) { return v === 0 || v === 1; });  // flags: one click away
        return { x: s.t.map(function (t) { return new Date(t); }), y: s.v, name: name, mode: "lines+markers",
                 type: "scatter", visible: flag ? "legendonly" : true };
      });
      var layout = { margin: { l: 40, r: 10, t: 10, b: 40 }, legend: { orientation: "h" },
        shapes: data.raised_at ? [{ type: "line", x0: new Date(data.raised_at), x1: new Date(data.raised_at), yref: "paper", y0: 0, y1: 1, line: { color: "#c62828", dash: "dot" } }] : [] };
      window.Plotly.newPlot(box, traces, layout, { displaylogo: false, responsive: true });
      box.dataset.ready = String(traces.length);
    });
  }

  board();
  chart();
})();
