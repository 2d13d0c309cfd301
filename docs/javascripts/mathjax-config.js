// MathJax 3 for pymdownx.arithmatex (generic mode): the formulas in <span/div class="arithmatex">.
// MathJax itself (tex-svg-full.js, Apache-2.0) ships with the site: every TeX extension is in
// that one file and SVG output needs no font, so the math renders with no network at all.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true },
  svg: { fontCache: "global" },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
    enableMenu: false, // the menu would offer speech, fetched on demand: nothing is fetched
  },
};
// Material's instant navigation swaps pages without reloading: typeset each new page.
document$.subscribe(() => { if (MathJax.typesetPromise) MathJax.typesetPromise(); });
