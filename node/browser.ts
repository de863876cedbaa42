// What a browser bundle gets for backlight/node (the "browser" export condition): an error that
// says where the browser-safe equivalents are, instead of a bundler failing on node:fs.
throw new Error(
  "backlight/node is Node-only (files, pngjs). In a browser: models from bytes or a URL (fetchModel, loadOnnx), " +
    "weights as data (backlight/weights, loadBundled), PNG through a canvas (encodePng, heatmapPng in backlight/explain).",
);
