// medbench serve: the page's only script (no build step, nothing fetched from elsewhere).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const resultsBox = document.getElementById("results");
const statusLine = document.getElementById("status");
const input = document.getElementById("file-input");
const zone = document.getElementById("drop-zone");
let info = null;

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

async function waitUntilReady() {
  for (;;) {
    const response = await fetch("/readyz");
    const ready = await response.json();
    if (ready.ready) return true;
    if (ready.error) {
      statusLine.textContent = `The run cannot be served: ${ready.error}`;
      return false;
    }
    statusLine.textContent = "The model is loading…";
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function loadInfo() {
  if (!(await waitUntilReady())) return;
  statusLine.textContent = "";
  const response = await fetch("/rest/info");
  info = await response.json();
  const auroc = (value) => (value === null || value === undefined ? "n/a" : value.toFixed(3));
  document.getElementById("run-info").textContent =
    `Run ${info.run_id} · ${info.architecture} · ${info.input_size[0]} px · ` +
    `validation mean AUROC ${auroc(info.val_mean_auroc)} · test ${auroc(info.test_mean_auroc)} · medbench ${info.medbench_version}`;
}

function barChart(answer) {
  const rowHeight = 26, labelWidth = 140, width = 420, barWidth = width - labelWidth - 50;
  const chart = svg("svg", { class: "bars", viewBox: `0 0 ${width} ${answer.classes.length * rowHeight + 4}`, role: "img" });
  const summary = answer.classes.map((name, i) => `${name} ${(answer.prediction[i] * 100).toFixed(1)}%`).join(", ");
  chart.setAttribute("aria-label", `Probabilities: ${summary}`);
  answer.classes.forEach((name, i) => {
    const y = i * rowHeight + 4, p = answer.prediction[i], t = answer.thresholds[i];
    const label = svg("text", { x: 0, y: y + 15 });
    label.textContent = name;
    chart.appendChild(label);
    chart.appendChild(svg("rect", { x: labelWidth, y, width: barWidth, height: 18, fill: "#e9edf2" }));
    const positive = answer.positive.includes(name);
    chart.appendChild(svg("rect", { class: positive ? "bar positive" : "bar", x: labelWidth, y, width: Math.max(1, p * barWidth), height: 18 }));
    const x = labelWidth + t * barWidth;
    chart.appendChild(svg("line", { class: "tick", x1: x, x2: x, y1: y - 2, y2: y + 20 }));
    const value = svg("text", { x: labelWidth + barWidth + 6, y: y + 15 });
    value.textContent = `${(p * 100).toFixed(1)}%`;
    chart.appendChild(value);
  });
  return chart;
}

async function explain(file, className, image, note) {
  const form = new FormData();
  form.append("file", file);
  note.textContent = `Computing Grad-CAM for ${className}…`;
  const response = await fetch(`/rest/explain/gradcam/auto?class=${encodeURIComponent(className)}`, { method: "POST", body: form });
  const answer = await response.json();
  if (!response.ok) { note.textContent = answer.detail; return; }
  image.src = `data:image/png;base64,${answer.comp}`;
  image.alt = `Grad-CAM of ${className} over ${file.name}`;
  note.textContent = `Grad-CAM: where the model looked for ${className} (p = ${(answer.probability * 100).toFixed(1)}%)`;
}

async function classify(file) {
  const card = element("article", { class: "card", "data-file": file.name });
  card.appendChild(element("h3", {}, file.name));
  resultsBox.appendChild(card);
  const form = new FormData();
  form.append("file", file);
  const response = await fetch("/rest/classify", { method: "POST", body: form });
  const answer = await response.json();
  if (!response.ok) {
    card.appendChild(element("p", { class: "error", role: "alert" }, `Refused (${response.status}): ${answer.detail}`));
    return;
  }
  card.appendChild(barChart(answer));
  const top = answer.classes[answer.prediction.indexOf(Math.max(...answer.prediction))];
  card.dataset.top = top;
  const called = answer.positive.length ? answer.positive.join(", ") : "none";
  card.appendChild(element("p", { class: "positive-list" }, `Called positive: ${called}`));
  const box = element("div", { class: "explain" });
  const id = `class-${resultsBox.children.length}`;
  box.appendChild(element("label", { for: id }, "Heatmap for"));
  const select = element("select", { id });
  answer.classes.forEach((name) => select.appendChild(element("option", { value: name }, name)));
  select.value = top;
  const note = element("p", { class: "hint", "aria-live": "polite" });
  const image = element("img", { class: "heatmap", alt: "" });
  select.addEventListener("change", () => explain(file, select.value, image, note));
  box.append(select, note, image);
  card.appendChild(box);
  await explain(file, top, image, note);
}

async function handle(files) {
  statusLine.textContent = `Classifying ${files.length} image(s)…`;
  await Promise.all(Array.from(files).map(classify));
  statusLine.textContent = `Done: ${files.length} image(s).`;
}

input.addEventListener("change", () => handle(input.files));
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => { event.preventDefault(); zone.classList.remove("over"); handle(event.dataTransfer.files); });
loadInfo();
