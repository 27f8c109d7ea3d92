// Starts the Klarna widget: loads its WebAssembly next to this file. A separate file, not
// an inline script, so the page can run under a strict Content-Security-Policy
// (script-src 'self' 'wasm-unsafe-eval' <Klarna's host>).
import init from "./klarna-widget.js";

init({ module_or_path: new URL("./klarna-widget_bg.wasm", import.meta.url) });
