// The usage page's two charts, drawn with uPlot from the page's JSON block (#usage-chart-data). The tables beside
// them carry the same figures: without JavaScript, or with a screen reader, nothing is lost.
"use strict";

(function () {
  const source = document.getElementById("usage-chart-data");
  if (!source || typeof window.uPlot === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  const lang = document.documentElement.lang || "en";
  const HEIGHT = 220;
  // The same units and base as Django's filesizeformat in the tables.
  const UNITS = lang === "ru" ? ["Б", "КБ", "МБ", "ГБ", "ТБ"] : ["B", "KB", "MB", "GB", "TB"];
  const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });

  function bytes(value) {
    if (value == null) {
      return "";
    }
    let unit = 0;
    while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return number.format(value) + " " + UNITS[unit];
  }

  function dateFormat(kind, timeZone) {
    const zone = { timeZone: timeZone || undefined };
    if (kind !== "months") {
      const day = new Intl.DateTimeFormat(lang, { ...zone, day: "numeric", month: "short" });
      return { one: (seconds) => day.format(new Date(seconds * 1000)), axis: null };
    }
    const full = new Intl.DateTimeFormat(lang, { ...zone, month: "short", year: "numeric" });
    const short = new Intl.DateTimeFormat(lang, { ...zone, month: "short" });
    const monthOf = new Intl.DateTimeFormat("en", { ...zone, month: "numeric" });
    const one = (seconds) => full.format(new Date(seconds * 1000));
    // On the axis the year only where it starts and at each January: "Feb 2029, May, Aug, Nov, Feb 2030".
    const axis = (splits) =>
      splits.map((seconds, index) => {
        const date = new Date(seconds * 1000);
        return index === 0 || monthOf.format(date) === "1" ? full.format(date) : short.format(date);
      });
    return { one, axis };
  }

  function draw(element) {
    const kind = element.dataset.usageChart;
    const series = data[kind];
    if (!series || series.x.length === 0) {
      return;
    }
    const when = dateFormat(kind, element.dataset.timeZone);
    const bars = (align) => window.uPlot.paths.bars({ size: [0.4, 24], align: align });
    const options = {
      width: Math.max(element.clientWidth, 240),
      height: HEIGHT,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1)] } },
      series: [
        { label: element.dataset.labelX, value: (u, seconds) => (seconds == null ? "" : when.one(seconds)) },
        {
          label: element.dataset.labelDownload,
          stroke: "#0d6efd",
          fill: "rgba(13, 110, 253, 0.6)",
          paths: bars(-1),
          points: { show: false },
          value: (u, v) => bytes(v),
        },
        {
          label: element.dataset.labelUpload,
          stroke: "#d63384",
          fill: "rgba(214, 51, 132, 0.6)",
          paths: bars(1),
          points: { show: false },
          value: (u, v) => bytes(v),
        },
      ],
      axes: [
        { values: (u, splits) => (when.axis ? when.axis(splits) : splits.map(when.one)), space: 70 },
        { values: (u, splits) => splits.map(bytes), size: 72 },
      ],
    };
    if (element.dataset.timeZone) {
      // Days are the operator's (the x values are its midnights), wherever the subscriber's phone is.
      options.tzDate = (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), element.dataset.timeZone);
    }
    const plot = new window.uPlot(options, [series.x, series.download, series.upload], element);
    if ("ResizeObserver" in window) {
      new ResizeObserver(() => plot.setSize({ width: Math.max(element.clientWidth, 240), height: HEIGHT })).observe(
        element,
      );
    }
  }

  document.querySelectorAll("[data-usage-chart]").forEach(draw);
})();
