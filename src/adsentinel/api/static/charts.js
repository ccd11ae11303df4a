// Draws every figure embedded in the page (<script type="application/json" data-figure-for=ID>)
// with the locally served Plotly.js. Kept in a file, not inline, so the page's
// Content-Security-Policy can forbid inline scripts.
//
// An anomaly's link (#anomaly-ID) lands on its row under the sticky title (style.css), so
// the reader still sees which entity it is.

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("script[data-figure-for]").forEach(function (holder) {
    var figure = JSON.parse(holder.textContent);
    var target = document.getElementById(holder.getAttribute("data-figure-for"));
    Plotly.newPlot(target, figure.data, figure.layout, {responsive: true, displaylogo: false})
      .then(function () { target.setAttribute("data-rendered", "true"); });
  });
});
