// Usage charts (Chart.js, served by Trellis from node_modules). The numbers are in each canvas's data-chart;
// the totals above each chart say the same for those without the canvas.
(() => {
  if (!window.Chart) return;
  const style = getComputedStyle(document.documentElement);
  const primary = style.getPropertyValue('--primary').trim() || '#1f6f5c';
  const accent = style.getPropertyValue('--accent').trim() || '#e0a526';
  for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
    const data = JSON.parse(canvas.getAttribute('data-chart'));
    const labels = data.labels.map((at) =>
      data.unit === 'hour' ? at.slice(11, 16) : data.unit === 'day' ? at.slice(5, 10) : at,
    );
    const datasets = [{ label: 'calls', data: data.values, backgroundColor: primary, borderColor: primary }];
    if (Array.isArray(data.tokens)) {
      datasets.push({
        type: 'line',
        label: 'tokens issued',
        data: data.tokens,
        borderColor: '#6b3fa0',
        backgroundColor: '#6b3fa0',
        pointRadius: 2,
      });
    }
    if (data.limit !== null) {
      datasets.push({
        type: 'line',
        label: 'limit',
        data: data.values.map(() => data.limit),
        borderColor: accent,
        borderDash: [6, 4],
        pointRadius: 0,
      });
    }
    new window.Chart(canvas, {
      type: 'bar',
      data: { labels, datasets },
      options: {
        animation: false,
        responsive: true,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
    canvas.setAttribute('data-rendered', 'true');
  }
})();
