/* The overview's charts, drawn with the vendored uPlot from the page's JSON block (#overview-data).
 *
 * Every chart shares the page's buckets: this period's values solid, the previous period's dashed on the
 * same x (shifted by one period), so a point and the one it is compared with sit on one vertical line.
 * Clicking a chart opens the calls of the bucket under the cursor: of the previous period when the
 * nearest line there is a dashed one. The tables under the charts hold the same links for the keyboard.
 * Times are shown in UTC, like the rest of the UI.
 */
(function () {
  "use strict";

  var block = document.getElementById("overview-data");
  if (!block || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(block.textContent);
  var buckets = data.buckets;
  var xs = buckets.map(function (b) { return b.t; });
  var COLORS = ["#1f5fa8", "#c2410c", "#2e7d32", "#7b1fa2"];
  var HEIGHT = 200;
  var FORMATS = {
    count: function (v) { return Math.round(v).toLocaleString("en"); },
    percent: function (v) { return v.toFixed(1) + "%"; },
    seconds: function (v) { return v.toFixed(2) + " s"; },
    usd: function (v) { return "$" + v.toFixed(4); },
    number: function (v) { return v.toFixed(2); },
  };
  var plots = [];
  // Whole steps for counts, so an axis never reads 0, 0, 1, 1.
  var COUNT_STEPS = [];
  [1, 10, 100, 1000, 10000, 100000, 1000000].forEach(function (m) {
    COUNT_STEPS.push(m, 2 * m, 5 * m);
  });

  function shown(format) {
    return function (u, v) { return v == null ? "–" : format(v); };
  }

  function nearestSeries(plot, index) {
    var best = null;
    var bestDistance = Infinity;
    for (var s = 1; s < plot.series.length; s++) {
      var value = plot.data[s][index];
      if (value == null || !plot.series[s].show) {
        continue;
      }
      var distance = Math.abs(plot.valToPos(value, "y") - plot.cursor.top);
      if (distance < bestDistance) {
        bestDistance = distance;
        best = s;
      }
    }
    return best;
  }

  function draw(spec) {
    var figure = document.getElementById("chart-" + spec.id);
    var holder = figure && figure.querySelector(".plot");
    if (!holder) {
      return;
    }
    var format = FORMATS[spec.kind] || FORMATS.number;
    var series = [{ label: "Bucket (UTC)" }];
    var columns = [xs];
    var previous = [false];
    spec.series.forEach(function (line, i) {
      var color = COLORS[i % COLORS.length];
      series.push({ label: line.label, stroke: color, width: 2, value: shown(format),
        points: { show: true, size: 6 } });
      columns.push(line.current);
      previous.push(false);
      series.push({ label: line.label + " (previous)", stroke: color, width: 1.5, dash: [6, 4],
        value: shown(format), points: { show: true, size: 5, fill: "#fff" } });
      columns.push(line.previous);
      previous.push(true);
    });
    var yAxis = { size: 64, values: function (u, ticks) { return ticks.map(format); } };
    if (spec.kind === "count") {
      yAxis.incrs = COUNT_STEPS;
    }
    var plot = new uPlot({
      width: Math.max(holder.clientWidth, 200),
      height: HEIGHT,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: {
        x: { time: true },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } },
      },
      axes: [{}, yAxis],
      series: series,
      // No dragging here, so no click is ever a drag's end: uPlot's default swallows a click whose
      // cursor it clamped between press and release, which is every click on the plot's outer pixels.
      cursor: { drag: { x: false, y: false, click: function () {} } },
    }, columns, holder);
    plot.over.addEventListener("click", function () {
      var index = plot.cursor.idx;
      if (index == null || !buckets[index]) {
        return;
      }
      var nearest = nearestSeries(plot, index);
      var bucket = buckets[index];
      window.location.assign(nearest != null && previous[nearest] ? bucket.previous_href : bucket.href);
    });
    plot.over.title = "Click for the calls of this bucket";
    plots.push({ plot: plot, holder: holder });
  }

  data.charts.forEach(draw);

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      plots.forEach(function (p) {
        p.plot.setSize({ width: Math.max(p.holder.clientWidth, 200), height: HEIGHT });
      });
    }, 150);
  });
})();
