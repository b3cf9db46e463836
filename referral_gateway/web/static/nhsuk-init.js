// Starts the NHS.UK frontend's components (header menu, error summary focus, tabs, buttons,
// skip link...). A module from this site, so the content security policy's script-src 'self'
// allows it; it also sets the body classes the frontend's own template sets inline.
import { initAll } from "/nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();
