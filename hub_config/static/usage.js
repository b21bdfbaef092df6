// The operators' Usage page (hub_config/templates/usage.html): fetches the range's figures
// from /hub/api/usage-charts and draws them with the vendored Chart.js. The chart instances
// are kept in window.usageCharts (the browser test reads them).
"use strict";
(function () {
  // Everything the page does, once Chart.js is there.
  function page(Chart) {
    const base = window.jhdata.base_url;
    const GIB = 1024 ** 3;
    window.usageCharts = {};

    function palette(i, n) {
      return `hsl(${Math.round((360 * i) / Math.max(n, 1) + 210) % 360}, 60%, 52%)`;
    }

    function label(iso, step) {
      // 2026-12-07T08:00:00+00:00 -> "2026-12-07" by the day, "12-07 08:00" by the hour.
      return step === "day" ? iso.slice(0, 10) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    }

    function bytes(n) {
      if (n === null || n === undefined) return "";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
      return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
    }

    function draw(key, canvasId, config) {
      if (window.usageCharts[key]) window.usageCharts[key].destroy();
      window.usageCharts[key] = new Chart(document.getElementById(canvasId), config);
    }

    function query() {
      const preset = document.getElementById("usage-preset").value;
      const params = new URLSearchParams();
      if (preset !== "custom") {
        params.set("since", preset);
        return params;
      }
      const since = document.getElementById("usage-since").value;
      const until = document.getElementById("usage-until").value;
      if (since) params.set("since", since);
      if (until) params.set("until", until); // a date includes that day (as for hubctl usage)
      return params;
    }

    function serverHours(data) {
      const { groups, points } = data.serverHours;
      draw("serverHours", "server-hours-chart", {
        type: "bar",
        data: {
          labels: points.map((p) => label(p.t, data.step)),
          datasets: groups.map((g, i) => ({
            label: g, data: points.map((p) => p[g]), backgroundColor: palette(i, groups.length), stack: "hours",
          })),
        },
        options: {
          maintainAspectRatio: false, animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "server-hours" } } },
        },
      });
    }

    function topUsers(data) {
      const rows = data.users.slice(0, data.topUsers);
      draw("topUsers", "top-users-chart", {
        type: "bar",
        data: {
          labels: rows.map((r) => r.user),
          datasets: [
            { label: "server-hours", data: rows.map((r) => r.serverHours), backgroundColor: palette(0, 3) },
            { label: "CPU-hours", data: rows.map((r) => r.cpuHours), backgroundColor: palette(1, 3) },
          ],
        },
        options: {
          indexAxis: "y", maintainAspectRatio: false, animation: false,
          scales: { x: { title: { display: true, text: "hours" } }, y: { ticks: { autoSkip: false } } },
        },
      });
    }

    function storage(data) {
      const rows = data.storage.slice(0, data.topVolumes);
      draw("storage", "storage-chart", {
        type: "bar",
        data: {
          labels: rows.map((r) => `${r.user} · ${r.kind || r.volume}`),
          datasets: [
            { label: "size (GiB)", data: rows.map((r) => r.bytes / GIB), backgroundColor: palette(0, 3), order: 2 },
            {
              // A marker per bar at its soft limit; none where no limit applies.
              type: "line", label: "soft limit (GiB)", showLine: false, order: 1,
              data: rows.map((r) => (r.softLimit ? r.softLimit / GIB : null)),
              pointStyle: "line", pointBorderWidth: 3,
              // As wide as about a bar: half the width of one category.
              pointRadius: (c) => Math.max(6, c.chart.chartArea ? c.chart.chartArea.width / (4 * Math.max(rows.length, 1)) : 6), borderColor: "#dc3545", backgroundColor: "#dc3545",
            },
          ],
        },
        options: { maintainAspectRatio: false, animation: false, scales: { y: { title: { display: true, text: "GiB" } } } },
      });
      const body = document.querySelector("#storage-table tbody");
      body.replaceChildren();
      for (const r of data.storage.slice(0, 200)) {
        const tr = document.createElement("tr");
        tr.dataset.user = r.user;
        const over = r.percent !== null && r.percent >= 100;
        for (const text of [r.user, r.volume, bytes(r.bytes), bytes(r.softLimit) || "none",
                            r.percent === null ? "" : `${r.percent} %`, (r.surveyed || "").slice(0, 16).replace("T", " ")]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        }
        if (over) tr.classList.add("table-danger");
        body.appendChild(tr);
      }
      if (!data.storage.length) {
        const tr = document.createElement("tr");
        const td = document.createElement("td");
        td.colSpan = 6; td.className = "text-muted"; td.textContent = "No survey of the volumes yet.";
        tr.appendChild(td); body.appendChild(tr);
      }
    }

    async function load() {
      const status = document.getElementById("usage-status");
      const params = query();
      for (const a of document.querySelectorAll("a.usage-csv")) {
        a.href = `${base}usage/${a.dataset.chart}.csv?${params}`;
      }
      status.textContent = "Loading…";
      try {
        const data = await window.platformCall("GET", `${base}api/usage-charts?${params}`);
        serverHours(data);
        topUsers(data);
        storage(data);
        status.textContent = `${data.since.slice(0, 16)} to ${data.until.slice(0, 16)} UTC, by the ${data.step}; `
          + `${data.users.length} users, ${data.serverHours.groups.length} groups.`;
        document.getElementById("usage-panel").dataset.loaded = "true";
      } catch (err) {
        status.textContent = `Could not load the figures: ${err.message}`;
      }
    }

    const preset = document.getElementById("usage-preset");
    preset.addEventListener("change", () => {
      const custom = preset.value === "custom";
      for (const id of ["usage-since", "usage-until"]) document.getElementById(id).disabled = !custom;
    });
    document.getElementById("usage-range").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    load();
  }

  const chartJs = document.currentScript.dataset.chartJs;
  // JupyterHub's pages load RequireJS: Chart.js's UMD build then defines an AMD module.
  if (typeof window.define === "function" && window.define.amd) {
    window.require([chartJs], (Chart) => page(Chart));
  } else {
    const script = document.createElement("script");
    script.src = chartJs;
    script.onload = () => page(window.Chart);
    document.head.appendChild(script);
  }
})();
