// Measures every page the harness holds in an iframe, once all have loaded: whether it scrolls
// sideways, the contrast of each run of text (and of generated text) against the background
// drawn behind it, the resources it asked for, and which colour scheme it was drawn in. The
// results go into the harness's <pre id="results"> for `--dump-dom` to carry out.
function rgba(text) {
  const m = text.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function over(top, bottom) {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
}
function luminance(c) {
  const lin = c.slice(0, 3).map(v => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
}
function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
function background(win, el, dark) {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(win.getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) {
      layers.push(c);
      if (c[3] >= 1) break;
    }
  }
  let base = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
  if (layers.length && layers[layers.length - 1][3] >= 1) base = layers.pop();
  while (layers.length) base = over(layers.pop(), base);
  return base;
}
function label(el, pseudo) {
  return el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + (pseudo || '');
}
function measure(frame) {
  const win = frame.contentWindow, doc = frame.contentDocument;
  const dark = win.matchMedia('(prefers-color-scheme: dark)').matches;
  const root = doc.documentElement;
  const texts = [];
  for (const el of doc.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const bg = background(win, el, dark);
    if (own) {
      const fg = over(rgba(win.getComputedStyle(el).color), bg);
      texts.push({ what: label(el), ratio: contrast(fg, bg) });
    }
    for (const pseudo of ['::before', '::after']) {
      const style = win.getComputedStyle(el, pseudo);
      if (style.content && style.content !== 'none' && style.content !== 'normal') {
        texts.push({ what: label(el, pseudo), ratio: contrast(over(rgba(style.color), bg), bg) });
      }
    }
  }
  return {
    page: frame.dataset.page,
    width: frame.width,
    dark: dark,
    title: doc.title,
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    resources: win.performance.getEntriesByType('resource').map(r => r.name),
    texts: texts,
  };
}
window.addEventListener('load', () => {
  const out = [];
  for (const frame of document.querySelectorAll('iframe')) {
    try {
      out.push(measure(frame));
    } catch (e) {
      out.push({ page: frame.dataset.page, width: frame.width, error: String(e) });
    }
  }
  document.getElementById('results').textContent = JSON.stringify(out);
});
