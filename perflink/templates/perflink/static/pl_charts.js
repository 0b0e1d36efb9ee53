// perflink report pages: draw each chart in the reader's browser. A chart is a Vega-Lite spec
// (<script type="application/json">) and the .pl-chart box naming it; vega-embed comes from
// the bundle inlined once in the page (window.vegaEmbed), so nothing is fetched and chart text
// is measured with the fonts it is drawn with. Options: SVG, no action menu, month names in
// the page language. When every chart has settled, <html data-pl-charts> holds their count
// (tests and print scripts wait for it).
const options = JSON.parse(document.getElementById("pl-chart-options").textContent);
const boxes = Array.from(document.querySelectorAll(".pl-chart[data-pl-spec]"));

function failed(box, err) {
  box.classList.add("pl-chart-failed");
  box.textContent = String(err && err.message ? err.message : err);
  console.error("perflink: chart not drawn:", err);
}

const drawn = boxes.map((box) => {
  try {
    const spec = JSON.parse(document.getElementById(box.dataset.plSpec).textContent);
    return window.vegaEmbed(box, spec, options).then(
      () => { box.dataset.plDrawn = "1"; },
      (err) => failed(box, err),
    );
  } catch (err) {
    failed(box, err);
    return Promise.resolve();
  }
});
Promise.allSettled(drawn).then(() => {
  document.documentElement.dataset.plCharts = String(boxes.length);
});
