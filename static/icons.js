// Line icons (24×24, stroked with currentColor), as SVG markup.

const svg = (body, extra = '') =>
  `<svg class="icon" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" ${extra}>${body}</svg>`;

const SLASH = '<path d="M3 3l18 18"/>';
const MIC = '<rect x="9" y="2" width="6" height="12" rx="3"/><path d="M19 10v1a7 7 0 0 1-14 0v-1"/><path d="M12 18v4"/>';
const CAMERA = '<rect x="2" y="6" width="14" height="12" rx="2"/><path d="M16 10.5l5.2-3a.5.5 0 0 1 .8.4v8.2a.5.5 0 0 1-.8.4l-5.2-3"/>';

export const ICONS = {
  mic: svg(MIC),
  micOff: svg(MIC + SLASH),
  camera: svg(CAMERA),
  cameraOff: svg(CAMERA + SLASH),
  leave: svg('<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/><path d="M16 17l5-5-5-5"/><path d="M21 12H9"/>'),
  people: svg('<path d="M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2"/><circle cx="9" cy="7" r="4"/><path d="M22 21v-2a4 4 0 0 0-3-3.9"/><path d="M16 3.1a4 4 0 0 1 0 7.8"/>'),
  settings: svg('<path d="M4 6h9M17 6h3M4 12h3M11 12h9M4 18h11M19 18h1"/><circle cx="15" cy="6" r="2"/><circle cx="9" cy="12" r="2"/><circle cx="17" cy="18" r="2"/>'),
  chair: svg('<path d="M3 18h18l-2-11-5 4-2-6-2 6-5-4-2 11z"/>'),
  speaking: svg('<path d="M4 10v4M8 6v12M12 3v18M16 7v10M20 10v4"/>'),
  globe: svg('<circle cx="12" cy="12" r="10"/><path d="M2 12h20"/><path d="M12 2a15 15 0 0 1 0 20a15 15 0 0 1 0-20"/>'),
  reconnecting: svg('<path d="M21 12a9 9 0 1 1-3-6.7"/><path d="M21 3v6h-6"/>'),
  // The conference system's composed picture: a screen of four.
  mcu: svg('<rect x="2" y="3" width="20" height="14" rx="2"/><path d="M12 3v14M2 10h20M8 21h8"/>'),
  close: svg('<path d="M18 6L6 18M6 6l12 12"/>'),
  logo: svg('<rect x="2" y="5" width="14" height="14" rx="3"/><path d="M16 10l6-3.5v11L16 14"/><circle cx="9" cy="12" r="2.5"/>', 'class="icon logo"'),
};

// Signal bars for the connection-quality hint: `level` 0 (nothing yet) to 3.
export function signalBars(level) {
  const bar = (i, h) =>
    `<rect x="${3 + i * 7}" y="${21 - h}" width="4" height="${h}" rx="1" class="${i < level ? 'on' : 'off'}"/>`;
  return `<svg class="icon bars" viewBox="0 0 24 24" aria-hidden="true">${bar(0, 6)}${bar(1, 11)}${bar(2, 17)}</svg>`;
}
