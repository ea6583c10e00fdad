// The collection report's page: a map of the files (Vega-Lite), filters, a sortable table and a
// file panel (curve, tags, player, similar tracks). Data: the JSON in #report-data, written by
// keras_music.collection_report (numbers as base64 arrays). window.report is what tests read.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const n = data.files.length;
  const S = data.score_names.length;
  const QUADRANT_COLOURS = ["#f0a202", "#d62728", "#1f77b4", "#2ca02c"];
  const OTHER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                         "#bcbd22", "#17becf"];
  const palette = data.quadrants ? QUADRANT_COLOURS : OTHER_COLOURS;
  const colourOf = (c) => palette[c % palette.length];

  function decode(text, Type) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  const scores = decode(data.scores, Uint16Array);
  const score = (i, j) => scores[i * S + j] / 65535;
  const basename = (path) => path.split(/[\\/]/).pop();
  const names = data.files.map(basename);
  const lowerNames = data.files.map((f) => f.toLowerCase());

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }
  const fixed = (value, digits) => (value === undefined || value === null ? "" : value.toFixed(digits));

  // What each file is tagged with, as a person reads it.
  const top = data.top_tags;
  function topTagText(i, limit) {
    const parts = [];
    top.groups.forEach((group, g) => {
      const picked = top.files[i][g].map((k) => top.names[group][k]);
      if (picked.length) parts.push(group + ": " + picked.slice(0, limit || picked.length).join(", "));
    });
    return parts.join("; ");
  }
  const labelNames = data.colour_names;
  const tagText = (i) => data.tags[i].map((t) => labelNames[t]).join(", ");

  // --- state and filters ----------------------------------------------------------------------
  const defaultSort = data.quadrants ? "arousal" : data.score_names[0];
  const state = {search: "", moods: new Set(labelNames.map((_, c) => c)), tag: "",
                 x: data.score_names.indexOf(data.axes[1] || data.axes[0]),
                 y: data.score_names.indexOf(data.axes[0]),
                 sort: data.score_names.indexOf(defaultSort), order: "desc", shown: 100, selected: null};
  if (data.quadrants) { state.x = data.score_names.indexOf("valence"); state.y = data.score_names.indexOf("arousal"); }

  function passes(i) {
    if (!state.moods.has(data.colour[i])) return false;
    if (state.search && !lowerNames[i].includes(state.search)) return false;
    if (state.tag) {
      const [kind, a, b] = state.tag.split(":");
      if (kind === "g" && !top.files[i][+a].includes(+b)) return false;
      if (kind === "t" && !data.tags[i].includes(+a)) return false;
    }
    return true;
  }
  function visible() {
    const shown = [];
    for (let i = 0; i < n; i++) if (passes(i)) shown.push(i);
    if (state.sort === -1) shown.sort((a, b) => names[a].localeCompare(names[b]));
    else shown.sort((a, b) => score(a, state.sort) - score(b, state.sort));
    if (state.order === "desc") shown.reverse();
    return shown;
  }

  // --- controls -------------------------------------------------------------------------------
  document.title = data.title;
  document.getElementById("title").textContent = data.title;
  document.getElementById("summary").textContent =
    `${n.toLocaleString()} tagged, ${data.failures.length.toLocaleString()} failed` +
    (data.model ? ` · model ${data.model}` : "") + ` · from ${data.records}, ${data.created}`;
  document.getElementById("footer").textContent =
    `Made by keras-music report (keras_music ${data.version}); works offline. Audio links are relative to this page.`;
  const notes = document.getElementById("notes");
  for (const text of data.missing) notes.append(el("p", {class: "note", text: text}));

  const moods = document.getElementById("moods");
  labelNames.forEach((name, c) => {
    const box = el("input", {type: "checkbox", checked: "", "data-mood": String(c)});
    box.addEventListener("change", () => {
      if (box.checked) state.moods.add(c); else state.moods.delete(c);
      refresh();
    });
    moods.append(el("label", {}, box, el("span", {class: "swatch", style: `background:${colourOf(c)}`}), name));
  });

  const tagSelect = document.getElementById("tag-filter");
  top.groups.forEach((group, g) => {
    const options = el("optgroup", {label: group});
    top.names[group].forEach((name, k) => options.append(el("option", {value: `g:${g}:${k}`, text: name})));
    tagSelect.append(options);
  });
  const thresholded = el("optgroup", {label: "over the model's threshold"});
  labelNames.forEach((name, t) => thresholded.append(el("option", {value: `t:${t}`, text: name})));
  tagSelect.append(thresholded);
  tagSelect.addEventListener("change", () => { state.tag = tagSelect.value; refresh(); });

  function fillScores(select, chosen, extra) {
    if (extra) select.append(el("option", {value: "-1", text: extra}));
    data.score_names.forEach((name, j) => select.append(el("option", {value: String(j), text: name})));
    select.value = String(chosen);
  }
  const xSelect = document.getElementById("x-axis"), ySelect = document.getElementById("y-axis");
  const sortSelect = document.getElementById("sort"), orderSelect = document.getElementById("order");
  fillScores(xSelect, state.x);
  fillScores(ySelect, state.y);
  fillScores(sortSelect, state.sort, "file name");
  xSelect.addEventListener("change", () => { state.x = +xSelect.value; drawMap(); });
  ySelect.addEventListener("change", () => { state.y = +ySelect.value; drawMap(); });
  sortSelect.addEventListener("change", () => { state.sort = +sortSelect.value; state.shown = 100; drawTable(visible()); });
  orderSelect.addEventListener("change", () => { state.order = orderSelect.value; drawTable(visible()); });
  let typing = null;
  document.getElementById("search").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.search = event.target.value.trim().toLowerCase(); refresh(); }, 150);
  });
  document.getElementById("more").addEventListener("click", () => { state.shown += 200; drawTable(visible()); });

  // --- the map --------------------------------------------------------------------------------
  let view = null;
  function points(shown) {
    return shown.map((i) => ({i: i, x: score(i, state.x), y: score(i, state.y), colour: labelNames[data.colour[i]],
                              file: names[i], tags: topTagText(i, 2)}));
  }
  function mapSpec() {
    const xName = data.score_names[state.x], yName = data.score_names[state.y];
    const layers = [{
      data: {name: "points"},
      mark: {type: "circle", size: 45, opacity: 0.75, cursor: "pointer"},
      encoding: {
        x: {field: "x", type: "quantitative", title: xName, scale: {domain: [0, 1]}, axis: {tickCount: 10, format: ".1f"}},
        y: {field: "y", type: "quantitative", title: yName, scale: {domain: [0, 1]}, axis: {tickCount: 10, format: ".1f"}},
        color: {field: "colour", type: "nominal", title: data.quadrants ? "quadrant" : "top tag",
                scale: {domain: labelNames, range: labelNames.map((_, c) => colourOf(c))}},
        tooltip: [{field: "file", title: "file"}, {field: "colour", title: "top"}, {field: "x", title: xName, format: ".3f"},
                  {field: "y", title: yName, format: ".3f"}, {field: "tags", title: "tags"}],
      },
      params: [{name: "zoom", select: "interval", bind: "scales"}],
    }];
    if (data.quadrants && xName === "valence" && yName === "arousal") {
      layers.push({data: {values: [{v: 0.5}]}, mark: {type: "rule", color: "#999", strokeDash: [4, 4]},
                   encoding: {x: {field: "v", type: "quantitative"}}});
      layers.push({data: {values: [{v: 0.5}]}, mark: {type: "rule", color: "#999", strokeDash: [4, 4]},
                   encoding: {y: {field: "v", type: "quantitative"}}});
    }
    return {$schema: "https://vega.github.io/schema/vega-lite/v5.json", width: "container", height: 480,
            autosize: {type: "fit-x", contains: "padding"}, layer: layers};
  }
  function drawMap() {
    const shown = visible();
    return vegaEmbed("#map", mapSpec(), {actions: false, renderer: "canvas"}).then((result) => {
      if (view) view.finalize();
      view = result.view;
      view.addEventListener("click", (event, item) => {
        if (item && item.datum && item.datum.i !== undefined) openPanel(item.datum.i);
      });
      return updateMap(shown);
    });
  }
  function updateMap(shown) {
    return view ? view.data("points", points(shown)).runAsync() : Promise.resolve();
  }
  function drawCounts(shown) {
    const counts = labelNames.map(() => 0);
    for (const i of shown) counts[data.colour[i]] += 1;
    const body = el("tbody");
    labelNames.forEach((name, c) => body.append(el("tr", {},
      el("td", {}, el("span", {class: "swatch", style: `background:${colourOf(c)}`}), name),
      el("td", {class: "number", text: counts[c].toLocaleString()}))));
    const box = document.getElementById("counts");
    box.replaceChildren(el("table", {"aria-label": "Files per " + (data.quadrants ? "quadrant" : "top tag")},
      el("thead", {}, el("tr", {}, el("th", {text: data.quadrants ? "quadrant" : "top tag"}),
                         el("th", {text: `files (${shown.length.toLocaleString()} shown)`}))), body));
  }

  // --- the table ------------------------------------------------------------------------------
  function drawTable(shown) {
    const sortName = state.sort === -1 ? null : data.score_names[state.sort];
    const columns = ["file", "length", data.quadrants ? "quadrant" : "top tag"]
      .concat(data.quadrants ? ["arousal", "valence"] : [])
      .concat(sortName && !(data.quadrants && (sortName === "arousal" || sortName === "valence")) ? [sortName] : [])
      .concat(["top tags"]);
    document.querySelector("#files thead").replaceChildren(el("tr", {}, ...columns.map((c) => el("th", {text: c}))));
    const body = el("tbody");
    for (const i of shown.slice(0, state.shown)) {
      const cells = [el("td", {text: names[i], title: data.files[i]}), el("td", {class: "number", text: fixed(data.seconds[i], 1) + " s"}),
                     el("td", {}, el("span", {class: "swatch", style: `background:${colourOf(data.colour[i])}`}), labelNames[data.colour[i]])];
      if (data.quadrants) for (const axis of ["arousal", "valence"]) cells.push(el("td", {class: "number", text: fixed(score(i, data.score_names.indexOf(axis)), 3)}));
      if (columns.length > cells.length + 1) cells.push(el("td", {class: "number", text: fixed(score(i, state.sort), 3)}));
      cells.push(el("td", {text: topTagText(i, 2)}));
      body.append(el("tr", {"data-i": String(i), onclick: () => openPanel(i)}, ...cells));
    }
    document.querySelector("#files tbody").replaceWith(body);
    document.getElementById("table-title").textContent =
      `Files (${Math.min(state.shown, shown.length).toLocaleString()} of ${shown.length.toLocaleString()} shown)`;
    document.getElementById("more").hidden = state.shown >= shown.length;
  }

  // --- a file's panel -------------------------------------------------------------------------
  let curves = null, similar = null, curveView = null;
  function curveRows(i) {
    if (!data.curves) return [];
    if (!curves) {
      curves = {offsets: decode(data.curves.offsets, Uint32Array), start: decode(data.curves.start, Float32Array),
                end: decode(data.curves.end, Float32Array), values: decode(data.curves.values, Uint16Array)};
    }
    const width = data.curves.names.length, rows = [];
    for (let w = curves.offsets[i]; w < curves.offsets[i + 1]; w++) {
      const time = (curves.start[w] + curves.end[w]) / 2;
      data.curves.names.forEach((name, j) => rows.push({
        time: time, series: name, value: curves.values[w * width + j] / 65535,
        panel: j < data.curves.labels ? "probability" : "arousal / valence"}));
    }
    return rows;
  }
  function curveSpec(rows) {
    const layer = (panel) => ({
      width: 360, height: 120, transform: [{filter: `datum.panel === '${panel}'`}],
      mark: {type: "line", point: true},
      encoding: {x: {field: "time", type: "quantitative", title: "time (s)"},
                 y: {field: "value", type: "quantitative", title: panel === "probability" ? "probability" : "score", scale: {domain: [0, 1]}},
                 color: {field: "series", type: "nominal", title: null, legend: {orient: "bottom", columns: 3, labelLimit: 160},
                         scale: panel === "probability" ? {domain: labelNames, range: labelNames.map((_, c) => colourOf(c))}
                                                         : {domain: ["arousal", "valence"], range: ["#444", "#9467bd"]}},
                 tooltip: [{field: "series"}, {field: "time", format: ".1f"}, {field: "value", format: ".3f"}]}});
    const panels = data.curves && data.curves.labels < data.curves.names.length ? ["probability", "arousal / valence"] : ["probability"];
    return {$schema: "https://vega.github.io/schema/vega-lite/v5.json", data: {values: rows},
            vconcat: panels.map(layer), resolve: {scale: {color: "independent"}, legend: {color: "independent"}}};
  }
  function similarTracks(i) {
    if (!data.similar) return [];
    if (!similar) similar = {indices: decode(data.similar.indices, Uint32Array), scores: decode(data.similar.scores, Float32Array)};
    const k = data.similar.k, list = [];
    for (let r = 0; r < k; r++) {  // approximate search (over 20,000 files) may find fewer: index -1 as uint32
      if (similar.indices[i * k + r] < n) list.push([similar.indices[i * k + r], similar.scores[i * k + r]]);
    }
    return list;
  }
  function openPanel(i) {
    state.selected = i;
    const panel = document.getElementById("panel");
    const facts = el("dl", {},
      el("dt", {text: data.quadrants ? "quadrant" : "top tag"}), el("dd", {text: labelNames[data.colour[i]]}),
      ...(data.quadrants ? [el("dt", {text: "arousal"}), el("dd", {text: fixed(score(i, data.score_names.indexOf("arousal")), 3)}),
                            el("dt", {text: "valence"}), el("dd", {text: fixed(score(i, data.score_names.indexOf("valence")), 3)})] : []),
      el("dt", {text: "tags"}), el("dd", {text: tagText(i) || "none over the thresholds"}),
      el("dt", {text: "length"}), el("dd", {text: fixed(data.seconds[i], 1) + " s"}));
    top.groups.forEach((group, g) => {
      const picked = top.files[i][g].map((k) => top.names[group][k]);
      if (picked.length) facts.append(el("dt", {text: group}), el("dd", {text: picked.join(", ")}));
    });
    const audio = el("audio", {controls: "", preload: "none", src: data.links[i]});
    const curve = el("div", {id: "curve"});
    const similarList = el("ol", {id: "similar"});
    for (const [j, value] of similarTracks(i)) {
      similarList.append(el("li", {"data-i": String(j), onclick: () => openPanel(j), title: data.files[j]},
                            `${names[j]} `, el("span", {class: "path", text: `${fixed(value, 3)} · ${labelNames[data.colour[j]]}`})));
    }
    panel.replaceChildren(el("h2", {id: "panel-file", text: names[i]}), el("div", {class: "path", text: data.files[i]}), audio, facts,
      el("h3", {text: "Over time"}), data.curves ? curve : el("p", {class: "note", text: "No curve: tag with --per-window."}),
      el("h3", {text: "Most similar tracks"}), data.similar ? similarList : el("p", {class: "note", text: "No similar tracks: tag with --embeddings."}));
    if (curveView) { curveView.finalize(); curveView = null; }
    if (data.curves) {
      const rows = curveRows(i);
      if (!rows.length) curve.append(el("p", {class: "note", text: "This file has no windows."}));
      else vegaEmbed(curve, curveSpec(rows), {actions: false, renderer: "canvas"}).then((result) => {
        if (state.selected === i) curveView = result.view; else result.view.finalize();
      });
    }
  }

  // --- failures -------------------------------------------------------------------------------
  const failures = document.getElementById("failures");
  document.getElementById("failures-title").textContent = `Failed files (${data.failures.length.toLocaleString()})`;
  if (!data.failures.length) failures.append(el("li", {text: "none"}));
  for (const [file, reason] of data.failures) {  // decoding errors start with the file's name already
    failures.append(el("li", {text: reason.startsWith(`${file}: `) ? reason : `${file}: ${reason}`}));
  }

  function refresh() {
    const shown = visible();
    state.shown = 100;
    drawCounts(shown);
    drawTable(shown);
    return updateMap(shown);
  }

  // --- what tests (and curious users) read ------------------------------------------------------
  function symbolItems(mark, ox, oy, found) {
    for (const item of mark.items || []) {
      if (mark.marktype === "symbol" && item.datum && item.datum.i !== undefined) found.push([item, ox, oy]);
      else if (mark.marktype === "group") for (const child of item.items || []) symbolItems(child, ox + (item.x || 0), oy + (item.y || 0), found);
    }
    return found;
  }
  window.report = {
    data: data,
    get view() { return view; },
    get curveView() { return curveView; },
    openPanel: openPanel,
    pointCount: () => (view ? symbolItems(view.scenegraph().root, 0, 0, []).length : 0),
    // The page coordinates of file i's point (for a real mouse click), or null when not drawn.
    pointPosition: (i) => {
      const hit = view && symbolItems(view.scenegraph().root, 0, 0, []).find(([item]) => item.datum.i === i);
      if (!hit) return null;
      const [item, ox, oy] = hit, origin = view.origin(), padding = view.padding();
      const rect = view.container().querySelector("canvas").getBoundingClientRect();
      return [rect.left + padding.left + origin[0] + ox + item.x, rect.top + padding.top + origin[1] + oy + item.y];
    },
  };
  const shown = visible();
  drawCounts(shown);
  drawTable(shown);
  drawMap().then(() => { window.reportReady = performance.now(); });
})();
