// Time charts of the console (the dashboard, a NAS's card, traffic by NAS), drawn with the vendored uPlot from
// a JSON block on the page: <div data-chart="ID" data-chart-key="day"> reads <script type="application/json"
// id="ID"> (Django's json_script) and, with data-chart-key, the member of that name. The block is
// {"x": [unix seconds...], "series": [{"label": "...", "values": [...], "unit": "count|bits|bytes|money",
// "bars": false, "color": "#0d6efd"}], "currency": "₽"}. No inline script (the Content-Security-Policy): this file
// finds the charts on load and in every fragment htmx swaps in (the dashboard's refresh), so a refreshed widget
// gets its chart again. A table beside each chart carries the same figures for those without JavaScript.
"use strict";

(function () {
  const HEIGHT = 200;
  const COLORS = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d", "#dc3545"];

  function formatters(lang, currency) {
    const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    const whole = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
    const scaled = (units, base) => (value) => {
      if (value == null) {
        return "";
      }
      let unit = 0;
      while (Math.abs(value) >= base && unit < units.length - 1) {
        value /= base;
        unit += 1;
      }
      return number.format(value) + " " + units[unit];
    };
    const ru = lang === "ru";
    return {
      count: (value) => (value == null ? "" : whole.format(value)),
      bits: scaled(ru ? ["бит/с", "кбит/с", "Мбит/с", "Гбит/с", "Тбит/с"] : ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"], 1000),
      bytes: scaled(ru ? ["Б", "КБ", "МБ", "ГБ", "ТБ", "ПБ"] : ["B", "KB", "MB", "GB", "TB", "PB"], 1024),
      money: (value) => (value == null ? "" : whole.format(value) + (currency ? "\u00a0" + currency : "")),
    };
  }

  function draw(element) {
    if (element.dataset.chartDrawn || typeof window.uPlot === "undefined") {
      return;
    }
    const source = document.getElementById(element.dataset.chart);
    if (!source) {
      return;
    }
    let data = JSON.parse(source.textContent);
    if (element.dataset.chartKey) {
      data = data[element.dataset.chartKey];
    }
    if (!data || !data.x || data.x.length === 0) {
      return;
    }
    element.dataset.chartDrawn = "1";
    const lang = document.documentElement.lang || "en";
    const format = formatters(lang, data.currency);
    const zone = element.dataset.timeZone || undefined;
    const daily = element.dataset.chartDays !== undefined;
    const when = new Intl.DateTimeFormat(lang, daily ? { timeZone: zone, day: "numeric", month: "short" } : {
      timeZone: zone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
    const units = [];
    data.series.forEach((s) => {
      if (!units.includes(s.unit || "count")) {
        units.push(s.unit || "count");
      }
    });
    const series = [{ label: element.dataset.labelX || "", value: (u, v) => (v == null ? "" : when.format(new Date(v * 1000))) }];
    data.series.forEach((s, index) => {
      const unit = s.unit || "count";
      const color = s.color || COLORS[index % COLORS.length];
      const line = {
        label: s.label,
        scale: unit,
        stroke: color,
        width: 2,
        points: { show: false },
        value: (u, v) => format[unit](v),
      };
      if (s.bars) {
        line.fill = color + "99";
        line.paths = window.uPlot.paths.bars({ size: [0.6, 40] });
      }
      series.push(line);
    });
    // The time axis in the page's language and the operator's time zone: hours within two days, else dates.
    const span = data.x[data.x.length - 1] - data.x[0];
    const hours = new Intl.DateTimeFormat(lang, { timeZone: zone, hour: "2-digit", minute: "2-digit" });
    const dates = new Intl.DateTimeFormat(lang, { timeZone: zone, day: "numeric", month: "short" });
    const tick = (seconds) => {
      const date = new Date(seconds * 1000);
      return !daily && span <= 2 * 86400 ? hours.format(date) : dates.format(date);
    };
    const axes = [{ space: 80, values: (u, splits) => splits.map(tick) }];
    units.forEach((unit, index) => {
      axes.push({ scale: unit, side: index === 0 ? 3 : 1, size: 80, grid: { show: index === 0 }, values: (u, splits) => splits.map(format[unit]) });
    });
    // A single point (the first day of a month) must not stretch the axis over years: at least a day each side.
    const first = data.x[0];
    const last = data.x[data.x.length - 1];
    const scales = { x: { time: true, range: (u, min, max) => (max === min ? [first - 43200, last + 43200] : [min, max]) } };
    units.forEach((unit) => {
      scales[unit] = { range: (u, min, max) => [0, Math.max(max, 1)] };
    });
    const options = { width: Math.max(element.clientWidth, 240), height: HEIGHT, series, axes, scales };
    if (zone) {
      options.tzDate = (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), zone);
    }
    const plot = new window.uPlot(options, [data.x, ...data.series.map((s) => s.values)], element);
    if ("ResizeObserver" in window) {
      new ResizeObserver(() => plot.setSize({ width: Math.max(element.clientWidth, 240), height: HEIGHT })).observe(element);
    }
  }

  function drawWithin(root) {
    if (root.matches && root.matches("[data-chart]")) {
      draw(root);
    }
    root.querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => drawWithin(document));
  document.addEventListener("htmx:load", (event) => drawWithin(event.detail.elt));
})();
