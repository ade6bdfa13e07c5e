// The map: grid polygons (the base map, or over an internal tile server), shaded by open
// alarms; devices by state in clusters; open alarms; workers' last positions. Redrawn when
// the board changes (at most every few seconds), without a reload.
(function () {
  "use strict";
  var box = document.getElementById("map");
  var prefix = document.body.dataset.prefix;
  var zh = document.body.dataset.locale === "zh-CN";
  var map = L.map(box, { zoomControl: true, maxZoom: 19 });
  if (box.dataset.tiles) { L.tileLayer(box.dataset.tiles, { maxZoom: 19 }).addTo(map); }
  var shades = ["#fff3e0", "#ffcc80", "#ff8a65", "#e53935"];
  var REDRAW_MS = 5000;

  function esc(text) { var d = document.createElement("span"); d.textContent = text; return d.innerHTML; }
  function pin(cls) { return L.divIcon({ className: "", html: '<div class="pin ' + cls + '"></div>', iconSize: [12, 12] }); }

  var grids = L.geoJSON(null, {
    style: function (f) {
      var p = f.properties;
      return { color: "#37474f", weight: 1, fillOpacity: p.open ? 0.55 : 0.15,
               fillColor: p.open ? shades[Math.max(0, p.worst)] : "#90a4ae" };
    },
    onEachFeature: function (f, layer) {
      layer.bindPopup('<a href="' + prefix + '/grids/' + encodeURIComponent(f.properties.id) + '">' +
        esc(f.properties.name) + "</a> · " + (zh ? "未完结告警 " : "open alarms ") + f.properties.open);
    }
  }).addTo(map);
  var cluster = null, overlay = L.layerGroup().addTo(map), placed = false;

  function draw(data) {
    grids.clearLayers();
    data.grids.forEach(function (g) { grids.addData({ type: "Feature", geometry: g.geometry, properties: g }); });
    if (!placed) {  // the view first: clusters are computed for a zoom
      var bounds = grids.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds); } else { map.setView([24.48, 118.09], 14); }
      cluster = L.markerClusterGroup({ chunkedLoading: true, disableClusteringAtZoom: 18 });
      map.addLayer(cluster);
      placed = true;
    }
    cluster.clearLayers();
    cluster.addLayers(data.devices.map(function (d) {
      var m = L.marker([d[1], d[2]], { icon: pin("st-" + d[4]), title: d[0] });
      m.bindPopup('<a href="' + prefix + '/devices/' + encodeURIComponent(d[0]) + '">' + esc(d[0]) + "</a> " + esc(d[3]) + " · " + esc(d[4]));
      return m;
    }));
    overlay.clearLayers();
    data.alarms.forEach(function (a) {
      L.circleMarker([a.lat, a.lon], { radius: 14, color: a.overdue ? "#b71c1c" : "#e53935", weight: 3, fill: false })
        .bindPopup('<a href="' + prefix + '/alarms/' + a.id + '">' + esc(zh ? a.title_zh : a.title_en) + "</a> · " + esc(a.severity))
        .addTo(overlay);
    });
    data.workers.forEach(function (w) {
      L.marker([w[2], w[3]], { icon: pin("worker"), title: w[1] })
        .bindPopup('<a href="' + prefix + '/workers/' + encodeURIComponent(w[0]) + '">' + esc(w[1]) + "</a>")
        .addTo(overlay);
    });
    box.dataset.devices = String(data.devices.length);
    box.dataset.grids = String(data.grids.length);
    box.dataset.alarms = String(data.alarms.length);
  }

  function load() {
    return fetch(box.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(draw);
  }

  var last = 0, pending = null;
  function changed() {
    if (pending) { return; }
    var wait = Math.max(0, last + REDRAW_MS - Date.now());
    pending = setTimeout(function () { pending = null; last = Date.now(); load(); }, wait);
  }

  load().then(function () {
    last = Date.now();
    var source = new EventSource(prefix + "/events?v=" + box.dataset.version);
    source.addEventListener("board", changed);
  });
})();
